#include "launcher/report_html.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include "launcher/report_chart.h"

namespace distgan::launcher {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// More samples than this are thinned evenly, first and last kept: each PNG adds its size x 4/3.
constexpr size_t kMaxSamples = 48;

// metrics.jsonl charts: a title and the (flattened) keys drawn together.
struct ChartSpec {
  const char* title;
  std::vector<const char*> keys;
};
const ChartSpec kMetricCharts[] = {
    {"Losses", {"loss_d", "loss_g"}},
    {"Discriminator outputs", {"d_real", "d_fake"}},
    {"Throughput (images/s)", {"images_per_s"}},
    {"Share of wall time", {"time_share.data", "time_share.compute", "time_share.comm"}},
    {"Gradient norms", {"grad_norm_d", "grad_norm_g"}},
    {"Ranks: busy ms per step (compute + data wait)", {"ranks.busy_ms_min", "ranks.busy_ms_median", "ranks.busy_ms_max"}},
    {"Penalty (R1 or WGAN-GP, unweighted)", {"penalty"}},
};

constexpr const char* kStyle = R"(body{font:14px/1.4 sans-serif;margin:2em auto;max-width:1180px;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;margin-top:1.6em}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:3px 10px;text-align:left;vertical-align:top}
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{border:1px solid #eee;background:#fff}
.chart .title{font-weight:bold;font-size:13px}.chart .tick,.chart .legend,.chart .label{font-size:11px;fill:#444}
.chart .grid{stroke:#eee}.chart .axis{stroke:#888}
.samples{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}figcaption{font-size:12px;color:#555}
img{max-width:100%;image-rendering:pixelated}pre{background:#f6f6f6;padding:8px;overflow:auto}
.warn{color:#a40})";

std::string format(double value, const char* spec = "%.4g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, spec, value);
  return buf;
}

std::string duration(double seconds) {
  const auto t = static_cast<long long>(seconds + 0.5);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
  return buf;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": cannot read");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string base64(const std::string& bytes) {
  static const char* kDigits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 2]);
    out += kDigits[v >> 18];
    out += kDigits[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kDigits[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kDigits[v & 63] : '=';
  }
  return out;
}

// The JSON objects of a .jsonl file; other lines are skipped with a warning naming the line.
std::vector<json> read_jsonl(const fs::path& path, std::vector<std::string>& warnings) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path.string() + ": cannot read");
  std::vector<json> objects;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("step") && j["step"].is_number())
      objects.push_back(std::move(j));
    else
      warnings.push_back(path.string() + ":" + std::to_string(number) +
                         (j.is_discarded() ? ": not valid JSON" : ": not a JSON object with a step") + "; skipped");
  }
  return objects;
}

// Numbers of an object, nested objects as "outer.inner" (time_share.comm).
void flatten(const json& object, const std::string& prefix, std::map<std::string, double>& out) {
  for (const auto& [key, value] : object.items()) {
    if (value.is_number()) out[prefix + key] = value.get<double>();
    if (value.is_object()) flatten(value, prefix + key + ".", out);
  }
}

double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

std::string table_row(const std::string& key, const std::string& value_html) {
  return "<tr><th>" + html_escape(key) + "</th><td>" + value_html + "</td></tr>\n";
}

// Values of `key` in every line (NaN where missing).
std::vector<double> column(const std::vector<std::map<std::string, double>>& lines, const std::string& key) {
  std::vector<double> out;
  for (const auto& line : lines) out.push_back(line.count(key) ? line.at(key) : std::nan(""));
  return out;
}

// Which rank was slowest most often, and the median spread (multi-rank runs only).
std::string stragglers(const std::vector<std::map<std::string, double>>& lines) {
  std::map<int, int> slowest;
  std::vector<double> spreads;
  for (const auto& line : lines) {
    if (!line.count("ranks.slowest") || !line.count("ranks.spread")) continue;
    ++slowest[static_cast<int>(line.at("ranks.slowest"))];
    spreads.push_back(line.at("ranks.spread"));
  }
  if (spreads.empty()) return "";
  const auto most = std::max_element(slowest.begin(), slowest.end(),
                                     [](const auto& a, const auto& b) { return a.second < b.second; });
  return table_row("slowest rank", "rank " + std::to_string(most->first) + " in " + std::to_string(most->second) +
                                       " of " + std::to_string(spreads.size()) +
                                       " metrics lines (hosts: Environment); median spread " +
                                       format(100 * median(spreads), "%.1f") + "% over the fastest");
}

std::string summary(const std::vector<std::map<std::string, double>>& lines, const std::vector<json>& evals) {
  std::string rows;
  if (lines.empty()) return "<p class=\"warn\">metrics.jsonl has no metrics lines yet.</p>\n";
  const auto& last = lines.back();
  auto last_value = [&](const char* key, const char* spec) {
    return last.count(key) ? format(last.at(key), spec) : std::string("-");
  };
  rows += table_row("steps done", last_value("step", "%.0f") + " (" + std::to_string(lines.size()) + " metrics lines)");
  rows += table_row("epoch", last_value("epoch", "%.0f"));
  rows +=
      table_row("last losses", "loss_D " + last_value("loss_d", "%.4f") + ", loss_G " + last_value("loss_g", "%.4f"));
  std::vector<double> speeds;
  for (const double v : column(lines, "images_per_s"))
    if (std::isfinite(v)) speeds.push_back(v);
  rows += table_row("median images/s", speeds.empty() ? "-" : format(median(speeds), "%.1f"));
  rows += table_row("wall time (last line's elapsed)", last.count("elapsed_s") ? duration(last.at("elapsed_s")) : "-");
  double skipped = 0;
  for (const double v : column(lines, "skipped")) skipped += std::isfinite(v) ? v : 0;
  rows += table_row("skipped non-finite updates", format(skipped, "%.0f"));
  rows += stragglers(lines);
  if (!evals.empty() && evals.back().contains("metrics") && evals.back()["metrics"].is_object()) {
    std::string text = "step " + format(evals.back()["step"].get<double>(), "%.0f") + ":";
    for (const auto& [key, value] : evals.back()["metrics"].items())
      if (value.is_number()) text += " " + key + " " + format(value.get<double>());
    rows += table_row("last evaluation", html_escape(text));
  }
  return "<table>\n" + rows + "</table>\n";
}

std::string metric_charts(const std::vector<std::map<std::string, double>>& lines) {
  const std::vector<double> steps = column(lines, "step");
  std::string out;
  for (const ChartSpec& spec : kMetricCharts) {
    std::vector<Series> series;
    for (const char* key : spec.keys) {
      std::vector<double> y = column(lines, key);
      if (std::any_of(y.begin(), y.end(), [](double v) { return std::isfinite(v); }))
        series.push_back({key, steps, std::move(y)});
    }
    if (!series.empty()) out += svg_line_chart(spec.title, series);
  }
  return out;
}

// One chart per numeric key of the evaluations' "metrics", EMA and raw generator as two lines.
std::string eval_charts(const std::vector<json>& evals) {
  std::map<std::string, std::map<std::string, Series>> charts;
  for (const json& e : evals) {
    if (!e.contains("metrics") || !e["metrics"].is_object()) continue;
    const bool ema = e.contains("ema") && e["ema"].is_boolean() && e["ema"].get<bool>();
    for (const auto& [key, value] : e["metrics"].items()) {
      if (!value.is_number()) continue;
      Series& s = charts[key][key + (ema ? " (EMA)" : "")];
      s.name = key + (ema ? " (EMA)" : "");
      s.x.push_back(e["step"].get<double>());
      s.y.push_back(value.get<double>());
    }
  }
  std::string out;
  for (const auto& [key, by_name] : charts) {
    std::vector<Series> series;
    for (const auto& [name, s] : by_name) series.push_back(s);
    out += svg_line_chart("Evaluation: " + key, series);
  }
  return out;
}

std::string samples(const fs::path& dir, std::vector<std::string>& warnings) {
  struct Sample {
    int group;  // 0: step_N..., 1: other names, 2: final...
    long long step;
    std::string name;
  };
  std::vector<Sample> found;
  std::error_code ec;
  const std::regex step_name(R"(step_(\d+).*)");
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || entry.path().extension() != ".png") continue;
    std::smatch m;
    if (std::regex_match(name, m, step_name))
      found.push_back({0, std::stoll(m[1].str().substr(0, 18)), name});
    else
      found.push_back({name.rfind("final", 0) == 0 ? 2 : 1, 0, name});
  }
  if (found.empty()) return "<p>No samples.</p>\n";
  std::sort(found.begin(), found.end(), [](const Sample& a, const Sample& b) {
    return std::tie(a.group, a.step, a.name) < std::tie(b.group, b.step, b.name);
  });
  std::vector<Sample> shown = found;
  if (found.size() > kMaxSamples) {
    shown.clear();
    for (size_t i = 0; i < kMaxSamples; ++i) shown.push_back(found[i * (found.size() - 1) / (kMaxSamples - 1)]);
  }
  std::string out = shown.size() < found.size() ? "<p>" + std::to_string(shown.size()) + " of " +
                                                      std::to_string(found.size()) + " samples, evenly spaced.</p>\n"
                                                : "";
  out += "<div class=\"samples\">\n";
  for (const Sample& s : shown) {
    std::string bytes;
    try {
      bytes = read_bytes(dir / s.name);
    } catch (const std::exception& e) {
      warnings.push_back(e.what());
      continue;
    }
    const std::string caption = s.group == 0 ? s.name + " (step " + std::to_string(s.step) + ")" : s.name;
    out += "<figure><img alt=\"" + html_escape(s.name) + "\" src=\"data:image/png;base64," + base64(bytes) +
           "\"><figcaption>" + html_escape(caption) + "</figcaption></figure>\n";
  }
  return out + "</div>\n";
}

std::string run_info(const fs::path& path, std::vector<std::string>& warnings) {
  if (!fs::exists(path)) return "<p>No run_info.json.</p>\n";
  const json info = json::parse(read_bytes(path), nullptr, /*allow_exceptions=*/false);
  if (!info.is_object()) {
    warnings.push_back(path.string() + ": not a JSON object; not shown");
    return "<p class=\"warn\">run_info.json is not a JSON object.</p>\n";
  }
  std::string rows;
  for (const auto& [key, value] : info.items()) {
    std::string text = value.is_string() ? value.get<std::string>() : "";
    if (value.is_array() && std::all_of(value.begin(), value.end(), [](const json& v) { return v.is_primitive(); }))
      for (const json& v : value)
        text += (text.empty() ? "" : ", ") + (v.is_string() ? v.get<std::string>() : v.dump());
    else if (!value.is_string())
      text = value.dump();
    rows += table_row(key, html_escape(text));
  }
  return "<table>\n" + rows + "</table>\n";
}

std::string checkpoints(const fs::path& run) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(run / "checkpoints", ec))
    if (entry.is_regular_file() && std::regex_match(entry.path().filename().string(), std::regex(R"(ckpt_.*\.h5)")))
      files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  if (fs::is_regular_file(run / "final.h5")) files.push_back(run / "final.h5");
  if (files.empty()) return "<p>No checkpoints.</p>\n";
  std::string rows;
  for (const fs::path& f : files)
    rows += table_row(fs::relative(f, run, ec).string(),
                      format(static_cast<double>(fs::file_size(f, ec)) / 1e6, "%.1f MB"));
  return "<table>\n" + rows + "</table>\n";
}

}  // namespace

Report build_report(const std::string& run_dir) {
  Report report;
  fs::path run = fs::absolute(run_dir).lexically_normal();
  if (run.filename().empty()) run = run.parent_path();
  const fs::path metrics_path = run / "metrics.jsonl";
  if (!fs::is_regular_file(metrics_path))
    throw std::runtime_error(metrics_path.string() + ": not found (training writes it at the first logged step)");
  std::vector<std::map<std::string, double>> lines;
  for (const json& j : read_jsonl(metrics_path, report.warnings)) flatten(j, "", lines.emplace_back());
  std::vector<json> evals;
  if (fs::exists(run / "eval.jsonl")) evals = read_jsonl(run / "eval.jsonl", report.warnings);

  const std::string name = html_escape(run.filename().string());
  std::string body = "<h1>distgan run " + name + "</h1>\n<p>" + html_escape(run.string()) + "</p>\n";
  body += "<h2>Summary</h2>\n" + summary(lines, evals);
  body += "<h2>Training metrics</h2>\n<div class=\"charts\">\n" + metric_charts(lines) + "</div>\n";
  if (!evals.empty()) body += "<h2>Evaluation</h2>\n<div class=\"charts\">\n" + eval_charts(evals) + "</div>\n";
  body += "<h2>Samples</h2>\n" + samples(run / "samples", report.warnings);
  body += "<h2>Configuration</h2>\n";
  body += fs::exists(run / "config.yaml")
              ? "<pre class=\"config\">" + html_escape(read_bytes(run / "config.yaml")) + "</pre>\n"
              : "<p>No config.yaml.</p>\n";
  body += "<h2>Environment</h2>\n" + run_info(run / "run_info.json", report.warnings);
  body += "<h2>Checkpoints</h2>\n" + checkpoints(run);
  if (!report.warnings.empty()) {
    body += "<h2>Warnings</h2>\n<ul class=\"warn\">\n";
    for (const std::string& w : report.warnings) body += "<li>" + html_escape(w) + "</li>\n";
    body += "</ul>\n";
  }
  report.html =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>distgan report: " + name +
      "</title>\n<style>\n" + kStyle + "\n</style>\n</head>\n<body>\n" + body + "</body>\n</html>\n";
  return report;
}

}  // namespace distgan::launcher
