#include "trainer/outputs/metrics_log.h"
#include "trainer/outputs/console_log.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "data/atomic_file.h"

namespace distgan {

MetricsLog::MetricsLog(const std::string& path) : path_(path), out_(path, std::ios::app) {
  if (!out_) throw std::runtime_error(path + ": cannot open the metrics file for appending");
}

std::string MetricsLog::console_line(const StepMetrics& m) {
  auto clock = [](double s) {
    char buf[32];
    const auto t = static_cast<long long>(s + 0.5);
    std::snprintf(buf, sizeof(buf), "%lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
    return std::string(buf);
  };
  char line[320];
  std::snprintf(line, sizeof(line),
                "step %lld/%lld  epoch %lld  loss_D %.4f  loss_G %.4f  D(real) %.3f  D(fake) %.3f  %.0f img/s  "
                "data %.0f%% compute %.0f%% comm %.0f%%  elapsed %s  eta %s",
                static_cast<long long>(m.step), static_cast<long long>(m.total_steps), static_cast<long long>(m.epoch),
                m.loss_d, m.loss_g, m.d_real, m.d_fake, m.images_per_s, 100 * m.share_data, 100 * m.share_compute,
                100 * m.share_comm, clock(m.elapsed_s).c_str(), clock(m.eta_s).c_str());
  std::string text = line;
  if (m.gflops_per_rank > 0) {
    char gflops[48];
    std::snprintf(gflops, sizeof(gflops), "  %.1f GFLOP/s per rank", m.gflops_per_rank);
    text += gflops;
  }
  if (m.has_penalty) {
    char penalty[48];
    std::snprintf(penalty, sizeof(penalty), "  penalty %.4g", m.penalty);
    text += penalty;
  }
  if (m.skipped > 0) text += "  skipped " + std::to_string(m.skipped) + " non-finite update(s)";
  if (m.has_ranks) {
    char ranks[160];
    std::snprintf(ranks, sizeof(ranks), "  slowest rank %d (%s) %.0f ms/step, +%.0f%% over the fastest",
                  m.ranks.slowest_rank, m.ranks.slowest_host.c_str(), m.ranks.busy_ms_max, 100 * m.ranks.spread);
    text += ranks;
  }
  return text;
}

std::string MetricsLog::json_line(const StepMetrics& m) {
  nlohmann::json j;
  j["step"] = m.step;
  j["epoch"] = m.epoch;
  j["loss_d"] = m.loss_d;
  j["loss_g"] = m.loss_g;
  j["d_real"] = m.d_real;
  j["d_fake"] = m.d_fake;
  j["images_per_s"] = m.images_per_s;
  if (m.gflops_per_rank > 0) j["gflops_per_rank"] = m.gflops_per_rank;
  j["time_share"] = {{"data", m.share_data}, {"compute", m.share_compute}, {"comm", m.share_comm}};
  j["grad_norm_d"] = m.grad_norm_d;
  j["grad_norm_g"] = m.grad_norm_g;
  j["skipped"] = m.skipped;
  if (m.has_penalty) j["penalty"] = m.penalty;
  if (m.has_ranks)
    j["ranks"] = {{"slowest", m.ranks.slowest_rank},         {"slowest_host", m.ranks.slowest_host},
                  {"busy_ms_min", m.ranks.busy_ms_min},       {"busy_ms_median", m.ranks.busy_ms_median},
                  {"busy_ms_max", m.ranks.busy_ms_max},       {"spread", m.ranks.spread},
                  {"data_wait_rank", m.ranks.data_rank},      {"data_wait_ms_max", m.ranks.data_ms_max}};
  j["elapsed_s"] = m.elapsed_s;
  j["eta_s"] = m.eta_s;
  return j.dump();
}

void MetricsLog::write(const StepMetrics& m) {
  log_info("%s\n", console_line(m).c_str());
  std::fflush(stdout);
  out_ << json_line(m) << '\n';
  out_.flush();
  if (!out_) throw std::runtime_error(path_ + ": cannot write metrics (disk full?)");
}

int64_t MetricsLog::truncate_after(const std::string& path, int64_t step) {
  std::ifstream in(path);
  if (!in) return 0;  // nothing logged yet
  std::string kept, line;
  int64_t dropped = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("step") && j["step"].is_number_integer() && j["step"].get<int64_t>() > step) {
      ++dropped;
      continue;
    }
    kept += line + "\n";
  }
  if (dropped == 0) return 0;
  data::AtomicOutput out(path, /*overwrite=*/true);
  {
    std::ofstream file(out.temp_path(), std::ios::binary);
    file << kept;
    if (!file.flush()) throw std::runtime_error(path + ": cannot rewrite the metrics file");
  }
  out.commit();
  return dropped;
}

}  // namespace distgan
