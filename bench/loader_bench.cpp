// Loader throughput: every rank reads its shard of a dataset through the sampler and the
// prefetching loader as fast as it can (no training), for a number of batches. Prints one line of
// JSON on rank 0 with each rank's samples/s and peak RSS.
//
// For scale, it also times what training consumes: a DCGAN-28 adversarial step (the layout of the
// training issue, D step + G step, Adam) at the same per-rank batch, in the same process.
#include <mpi.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cluster/world.h"
#include "data/prefetch_loader.h"
#include "trainer/model/losses.h"
#include "trainer/model/models.h"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double current_rss_mib() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

// Images per second of a DCGAN-28 D+G step at batch `b` (trainer's models and losses, z 100,
// ch 64, D frozen during the G step as in the trainer), after one warm-up step.
double dcgan_step_rate(int64_t b, int steps) {
  distgan::ModelSpec spec;
  spec.sample_shape = {1, 28, 28};
  distgan::GanModels m = distgan::build_models(spec);
  auto& g = m.generator;
  auto& d = m.discriminator;
  torch::optim::Adam opt_g(g->parameters(), torch::optim::AdamOptions(2e-4).betas({0.5, 0.999}));
  torch::optim::Adam opt_d(d->parameters(), torch::optim::AdamOptions(2e-4).betas({0.5, 0.999}));
  const auto real = torch::rand({b, 1, 28, 28}) * 2 - 1;
  const auto loss = distgan::LossKind::kNonSaturating;
  auto step = [&] {
    auto fake = g->forward(torch::randn({b, spec.z_dim}));
    opt_d.zero_grad();
    distgan::discriminator_loss(loss, d->forward(real), d->forward(fake.detach())).backward();
    opt_d.step();
    opt_g.zero_grad();
    for (auto& p : d->parameters()) p.requires_grad_(false);
    distgan::generator_loss(loss, d->forward(fake)).backward();
    for (auto& p : d->parameters()) p.requires_grad_(true);
    opt_g.step();
  };
  step();
  const auto t0 = Clock::now();
  for (int i = 0; i < steps; ++i) step();
  return static_cast<double>(b * steps) / seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);

  CLI::App app{"distgan loader benchmark"};
  std::string path = "datasets/fashion-mnist.h5";
  int64_t batch = 64, batches = 400;
  int consumer_steps = 0, threads = 1;
  app.add_option("--data", path, "HDF5 dataset file")->capture_default_str();
  app.add_option("--batch", batch, "per-rank batch size")->capture_default_str();
  app.add_option("--batches", batches, "batches each rank reads (timed after the first)")->capture_default_str();
  app.add_option("--consumer-steps", consumer_steps, "also time this many DCGAN-28 training steps (0: skip)");
  app.add_option("--threads", threads, "LibTorch compute threads for the consumer step")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    MPI_Finalize();
    return code;
  }
  torch::set_num_threads(threads);
  distgan::cluster::keep_freed_host_memory();  // as the trainer does

  distgan::data::LoaderOptions o;
  o.reader.path = path;
  o.world_size = size;
  o.rank = rank;
  o.batch_size = batch;
  double rate = 0;
  int64_t epoch_batches = 0;
  const double rss_before = current_rss_mib();  // LibTorch and MPI, before the loader exists
  try {
    distgan::data::PrefetchLoader loader(o);
    epoch_batches = loader.batches_per_epoch();
    loader.next();  // the first batch includes opening the file and filling the queue
    const auto t0 = Clock::now();
    double checksum = 0;
    for (int64_t i = 1; i < batches; ++i) checksum += loader.next().data[0][0][0][0].item<float>();
    rate = static_cast<double>(batch * (batches - 1)) / seconds_since(t0);
    if (checksum == 12345.678) std::printf(" ");  // keeps the reads observable
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[rank %d] error: %s\n", rank, e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  const double rss = peak_rss_mib();
  const double consume = consumer_steps > 0 ? dcgan_step_rate(batch, consumer_steps) : 0.0;

  const auto n = static_cast<size_t>(size);
  std::vector<double> rates(n), rss_all(n), before_all(n), consume_all(n);
  MPI_Gather(&rss_before, 1, MPI_DOUBLE, before_all.data(), 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  MPI_Gather(&rate, 1, MPI_DOUBLE, rates.data(), 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  MPI_Gather(&rss, 1, MPI_DOUBLE, rss_all.data(), 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  MPI_Gather(&consume, 1, MPI_DOUBLE, consume_all.data(), 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  if (rank == 0) {
    nlohmann::json j;
    j["ranks"] = size;
    j["batch"] = batch;
    j["batches"] = batches;
    j["batches_per_epoch"] = epoch_batches;
    j["samples_per_s"] = rates;
    j["peak_rss_mib"] = rss_all;
    j["rss_before_loader_mib"] = before_all;
    j["train_samples_per_s"] = consume_all;
    std::printf("%s\n", j.dump().c_str());
  }
  MPI_Finalize();
  return 0;
}
