#include "trainer/run/code_reseed.h"
#include "trainer/outputs/console_log.h"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <vector>

#include "trainer/run/agreed_failure.h"
#include "trainer/eval/support.h"
#include "trainer/model/optimizer_state.h"

namespace distgan {

namespace {

CategoricalLatentImpl& require_latent(torch::nn::Sequential& generator) {
  CategoricalLatentImpl* latent = categorical_latent(generator);
  if (latent == nullptr) throw std::invalid_argument("code re-seeding: the generator has no categorical latent");
  return *latent;
}

}  // namespace

CategoricalLatentImpl* categorical_latent(torch::nn::Sequential& generator) {
  if (generator->size() == 0) return nullptr;
  return generator->ptr(0)->as<CategoricalLatentImpl>();
}

torch::Tensor codes_off_data(GanModels& models, const torch::Tensor& real, at::Generator& rng,
                             const CodeReseedOptions& options) {
  torch::NoGradGuard no_grad;
  CategoricalLatentImpl& latent = require_latent(models.generator);
  const int64_t k = latent.codes.size(0), z_dim = latent.codes.size(1), n = options.samples_per_code;
  // z whose first coordinate sits in the middle of code c's bin of the normal CDF (see category()).
  const torch::Tensor codes = torch::arange(k, torch::kInt64).repeat_interleave(n);
  const torch::Tensor u = (codes.to(torch::kFloat64) + 0.5) / double(k);
  torch::Tensor z = torch::randn({k * n, z_dim}, rng);
  z.select(1, 0).copy_(torch::erfinv(2 * u - 1) * std::sqrt(2.0));
  z = z.to(latent.codes.device());
  if (!latent.category(z).cpu().equal(codes))
    throw std::logic_error("code re-seeding: a latent meant for one code fell into another's bin");
  // In training mode, as G runs in the steps: BatchNorm (model.mlp_batchnorm) then normalises with
  // these samples' statistics rather than rank 0's running ones, which the ranks average only now and
  // then, so the marks depend on the model alone. The running statistics are put back afterwards.
  std::vector<torch::Tensor> buffers;
  for (const auto& b : models.generator->buffers()) buffers.push_back(b.clone());
  const torch::Tensor samples = generate(models.generator, z, {}).to(torch::kCPU, torch::kFloat64);
  size_t i = 0;
  for (auto& b : models.generator->buffers()) b.copy_(buffers[i++]);
  const torch::Tensor outside =
      eval::outside_support(real.to(torch::kCPU), samples.reshape({k * n, -1}), options.neighbours, options.coverage);
  return outside.view({k, n}).to(torch::kFloat64).mean(1) > 0.5;
}

CodeReseedResult reseed_codes(GanModels& models, torch::optim::Adam& optimizer_g, const torch::Tensor& off_data,
                              at::Generator& rng, const CodeReseedOptions& options) {
  torch::NoGradGuard no_grad;
  CategoricalLatentImpl& latent = require_latent(models.generator);
  const int64_t k = latent.codes.size(0);
  if (off_data.dim() != 1 || off_data.size(0) != k)
    throw std::invalid_argument("code re-seeding: the off-data marks have the wrong size");
  const torch::Tensor off = off_data.to(torch::kCPU, torch::kBool);
  CodeReseedResult result;
  result.codes = k;
  result.off_data = off.sum().item<int64_t>();
  result.settled = double(result.off_data) <= options.max_off_share * double(k);
  torch::Tensor checks = latent.off_data_checks.to(torch::kCPU);
  checks = result.settled ? (checks + 1) * off.to(torch::kInt64) : torch::zeros_like(checks);
  const torch::Tensor due = checks >= options.checks_in_a_row;
  result.reseeded = due.sum().item<int64_t>();
  if (result.reseeded > 0) {
    const torch::Tensor live = (~off).nonzero().select(1, 0);
    const torch::Tensor targets = due.nonzero().select(1, 0);
    torch::Tensor source = torch::arange(k, torch::kInt64);
    source.index_copy_(0, targets, live.index_select(0, torch::randint(live.size(0), {result.reseeded}, rng,
                                                                       torch::kInt64)));
    auto remap = [&](torch::Tensor t) { t.copy_(t.index_select(0, source.to(t.device()))); };
    remap(latent.codes);
    if (models.generator_ema) remap(require_latent(models.generator_ema).codes);
    if (auto* state = find_adam_state(optimizer_g, latent.codes)) {
      remap(state->exp_avg());
      remap(state->exp_avg_sq());
    }
    checks.masked_fill_(due, 0);
  }
  latent.off_data_checks.copy_(checks);
  if (models.generator_ema) require_latent(models.generator_ema).off_data_checks.copy_(checks);
  return result;
}

CodeReseedResult check_latent_codes(GanModels& models, torch::optim::Adam& optimizer_g, cluster::Communicator& comm,
                                    const torch::Tensor& real, CodeCheckSeeds seeds, int64_t step) {
  const auto start = std::chrono::steady_clock::now();
  torch::Tensor off_data = torch::zeros({require_latent(models.generator).codes.size(0)}, torch::kInt64);
  on_root_agreed(comm, [&] {
    at::Generator samples = at::detail::createCPUGenerator(seeds.samples);
    off_data = codes_off_data(models, real, samples).to(torch::kInt64);
  });
  comm.broadcast(off_data, 0);
  at::Generator choice = at::detail::createCPUGenerator(seeds.choice);
  const CodeReseedResult r = reseed_codes(models, optimizer_g, off_data, choice);
  if (comm.rank() != 0 || r.off_data == 0) return r;
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  const auto count = [](int64_t n) { return static_cast<long long>(n); };
  log_info("distgan: step %lld: %lld of %lld latent codes drew off the data", count(step), count(r.off_data),
              count(r.codes));
  if (r.reseeded > 0)
    log_info("; %lld of them, off at the last check too, are now copies of live codes", count(r.reseeded));
  else if (r.settled)
    log_info("; none was off at the last check too");
  else
    log_info(", more than half: not re-seeded yet");
  log_info(" (%.0f ms)\n", ms);
  std::fflush(stdout);
  return r;
}

}  // namespace distgan
