// The page `distgan report` writes: one self-contained HTML file describing a run directory
// (summary, charts of metrics.jsonl and eval.jsonl as inline SVG, samples/*.png embedded as data:
// URIs, config.yaml, run_info.json, the checkpoints), with no script and no external resource.
#pragma once

#include <string>
#include <vector>

namespace distgan::launcher {

struct Report {
  std::string html;
  std::vector<std::string> warnings;  // e.g. "runs/x/metrics.jsonl:7: not a JSON object; skipped"
};

// Reads `run_dir`. Everything but metrics.jsonl is optional. Throws std::runtime_error naming
// metrics.jsonl when it is missing or unreadable.
Report build_report(const std::string& run_dir);

}  // namespace distgan::launcher
