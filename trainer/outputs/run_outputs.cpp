#include "trainer/outputs/run_outputs.h"
#include "trainer/outputs/console_log.h"

#include <nlohmann/json.hpp>
#include <torch/version.h>

#include <cstdio>
#include <ctime>

#ifdef DISTGAN_HAVE_EVENTS
#include "trainer/outputs/events/event_writer.h"
#include "trainer/outputs/version.h"
#else
namespace distgan {
// Built without protobuf: no TensorBoard output (trainer/outputs/events/CMakeLists.txt says so at configure time).
class EventWriter {
 public:
  explicit EventWriter(const std::string&) { throw std::runtime_error("this distgan was built without protobuf"); }
  void add_scalars(int64_t, const std::vector<std::pair<std::string, double>>&) {}
  void add_image(const std::string&, int64_t, const std::string&, int, int, int) {}
};
}  // namespace distgan
#endif

namespace distgan {

namespace fs = std::filesystem;

namespace {

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error(path.string() + ": cannot write");
}

std::string utc_now() {
  char text[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return text;
}

}  // namespace

RunOutputs::RunOutputs(const Config& config, const fs::path& run_dir, int64_t resumed_step, const RunInfo& info)
    : run_dir_(run_dir) {
  std::error_code ec;
  fs::create_directories(run_dir_ / "samples", ec);
  if (ec)
    throw std::runtime_error("logging.run_dir: cannot create '" + (run_dir_ / "samples").string() + "': " + ec.message());
  write_text(run_dir_ / "config.yaml", print_config(config));
  nlohmann::json j{{"distgan_version", distgan_version()},
                   {"libtorch", TORCH_VERSION},
                   {"world_size", info.world_size},
                   {"device", info.device},
                   {"backend", info.backend},
                   {"threads_per_rank", info.threads},
                   {"hosts", info.hosts},
                   {"model", info.model_summary},
                   {"started", utc_now()},
                   {"resumed_from_step", resumed_step}};
  write_text(run_dir_ / "run_info.json", j.dump(1) + "\n");
  const std::string metrics_path = (run_dir_ / "metrics.jsonl").string(), eval_path = (run_dir_ / "eval.jsonl").string();
  if (resumed_step >= 0) {  // the steps after the checkpoint are trained (and logged) again
    MetricsLog::truncate_after(metrics_path, resumed_step);
    MetricsLog::truncate_after(eval_path, resumed_step);
  }
  metrics_ = std::make_unique<MetricsLog>(metrics_path);
  eval_.open(eval_path, std::ios::app);
  if (!eval_) throw std::runtime_error(eval_path + ": cannot write");
  try {
    events_ = std::make_unique<EventWriter>((run_dir_ / "tensorboard").string());
  } catch (const std::exception& e) {
    log_warning("distgan: warning: no TensorBoard events: %s\n", e.what());
  }
}

RunOutputs::~RunOutputs() = default;

void RunOutputs::tensorboard(const std::function<void(EventWriter&)>& write) {
  if (!events_) return;
  try {
    write(*events_);
  } catch (const std::exception& e) {
    log_warning("distgan: warning: TensorBoard events stop here: %s\n", e.what());
    events_.reset();
  }
}

void RunOutputs::metrics(const StepMetrics& m) {
  metrics_->write(m);
  tensorboard([&](EventWriter& w) {
    if (m.has_penalty) w.add_scalars(m.step, {{"loss/penalty", m.penalty}});
    w.add_scalars(m.step, {{"loss/d", m.loss_d},
                           {"loss/g", m.loss_g},
                           {"d_output/real", m.d_real},
                           {"d_output/fake", m.d_fake},
                           {"throughput/images_per_s", m.images_per_s},
                           {"time_share/data", m.share_data},
                           {"time_share/compute", m.share_compute},
                           {"time_share/comm", m.share_comm},
                           {"grad_norm/d", m.grad_norm_d},
                           {"grad_norm/g", m.grad_norm_g},
                           {"skipped_updates", double(m.skipped)}});
  });
}

void RunOutputs::samples(const std::string& name, int64_t step, const Image& image) {
  write_png((run_dir_ / "samples" / (name + ".png")).string(), image);
  tensorboard([&](EventWriter& w) {
    w.add_image("samples", step, encode_png(image), static_cast<int>(image.height), static_cast<int>(image.width),
                static_cast<int>(image.channels));
  });
}

void RunOutputs::evaluation(int64_t step, bool ema, const EvalResult& r) {
  nlohmann::json metrics = nlohmann::json::object();
  std::vector<std::pair<std::string, double>> scalars;
  for (const auto& [name, value] : r.metrics) {
    metrics[name] = value;
    scalars.emplace_back("eval/" + name, value);
  }
  nlohmann::json line{{"step", step}, {"generator", ema ? "ema" : "raw"}, {"metrics", metrics}};
  if (!r.class_accuracy.empty()) line["class_accuracy"] = r.class_accuracy;
  eval_ << line.dump() << "\n";
  eval_.flush();
  log_info("eval step %lld (%s generator): %s\n", static_cast<long long>(step), ema ? "EMA" : "raw", r.text().c_str());
  std::fflush(stdout);
  tensorboard([&](EventWriter& w) { w.add_scalars(step, scalars); });
}

}  // namespace distgan
