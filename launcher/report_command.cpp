// `distgan report`: one self-contained HTML page describing a run directory (launcher/report_html.h),
// to open in any browser or attach to a ticket; no server, script or network needed.
#include <cstdio>
#include <fstream>
#include <memory>
#include <stdexcept>

#include "data/atomic_file.h"
#include "launcher/commands.h"
#include "launcher/report_html.h"

namespace distgan::launcher {

namespace {

struct ReportOptions {
  std::string run_dir, out;
};

}  // namespace

Runner add_report_command(CLI::App& app) {
  auto o = std::make_shared<ReportOptions>();
  auto* cmd = app.add_subcommand("report", "write an HTML page of a run: charts, samples, config, environment");
  cmd->add_option("run_dir", o->run_dir, "run directory (logging.run_dir), with metrics.jsonl")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("-o,--out", o->out, "HTML file to write, replaced if it exists (default: <run dir>/report.html)");

  return [o]() -> int {
    const Report report = build_report(o->run_dir);
    for (const std::string& warning : report.warnings) std::fprintf(stderr, "distgan: warning: %s\n", warning.c_str());
    const std::string path = o->out.empty() ? o->run_dir + "/report.html" : o->out;
    data::AtomicOutput out(path, /*overwrite=*/true);
    {
      std::ofstream file(out.temp_path(), std::ios::binary);
      file << report.html;
      if (!file.flush()) throw std::runtime_error(path + ": cannot write the report");
    }
    out.commit();
    std::printf("wrote %s (%.1f kB)\n", path.c_str(), static_cast<double>(report.html.size()) / 1e3);
    return kExitOk;
  };
}

}  // namespace distgan::launcher
