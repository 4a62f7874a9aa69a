#include "trainer/code_reseed.h"

#include <cmath>
#include <stdexcept>
#include <vector>

#include "trainer/eval/support.h"
#include "trainer/optimizer_state.h"

namespace distgan {

CategoricalLatentImpl* categorical_latent(torch::nn::Sequential& generator) {
  if (generator->size() == 0) return nullptr;
  return generator->ptr(0)->as<CategoricalLatentImpl>();
}

CodeSources choose_code_sources(GanModels& models, const torch::Tensor& real, at::Generator& rng,
                                const CodeReseedOptions& options) {
  torch::NoGradGuard no_grad;
  CategoricalLatentImpl* latent = categorical_latent(models.generator);
  if (latent == nullptr) throw std::invalid_argument("code re-seeding: the generator has no categorical latent");
  const int64_t k = latent->codes.size(0), z_dim = latent->codes.size(1), n = options.samples_per_code;
  CodeSources out;
  out.codes = k;
  out.source = torch::arange(k, torch::kInt64);
  // z whose first coordinate sits in the middle of code c's bin of the normal CDF (see category()).
  const torch::Tensor codes = torch::arange(k, torch::kInt64).repeat_interleave(n);
  const torch::Tensor u = (codes.to(torch::kFloat64) + 0.5) / double(k);
  torch::Tensor z = torch::randn({k * n, z_dim}, rng);
  z.select(1, 0).copy_(torch::erfinv(2 * u - 1) * std::sqrt(2.0));
  const torch::Device device = latent->codes.device();
  z = z.to(device);
  if (!latent->category(z).cpu().equal(codes))
    throw std::logic_error("code re-seeding: a latent meant for one code fell into another's bin");
  // In training mode, as G runs in the steps: BatchNorm (model.mlp_batchnorm) then normalises with
  // these samples' statistics rather than rank 0's running ones, which the ranks average only now and
  // then, so the choice depends on the model alone. The running statistics are put back afterwards.
  std::vector<torch::Tensor> buffers;
  for (const auto& b : models.generator->buffers()) buffers.push_back(b.clone());
  const torch::Tensor samples = generate(models.generator, z, {}).to(torch::kCPU, torch::kFloat64);
  size_t i = 0;
  for (auto& b : models.generator->buffers()) b.copy_(buffers[i++]);
  const torch::Tensor outside =
      eval::outside_support(real.to(torch::kCPU), samples.reshape({k * n, -1}), options.neighbours, options.coverage);
  const torch::Tensor dead = outside.view({k, n}).to(torch::kFloat64).mean(1) > 0.5;
  out.dead = dead.sum().item<int64_t>();
  if (out.dead == 0 || double(out.dead) > options.max_dead_share * double(k)) return out;
  const torch::Tensor live = (~dead).nonzero().select(1, 0);
  const torch::Tensor dead_index = dead.nonzero().select(1, 0);
  const torch::Tensor pick = torch::randint(live.size(0), {out.dead}, rng, torch::kInt64);
  out.source.index_copy_(0, dead_index, live.index_select(0, pick));
  out.applied = true;
  return out;
}

void apply_code_sources(GanModels& models, torch::optim::Adam& optimizer_g, const torch::Tensor& source) {
  torch::NoGradGuard no_grad;
  auto remap = [&](torch::Tensor t) { t.copy_(t.index_select(0, source.to(t.device()))); };
  CategoricalLatentImpl* latent = categorical_latent(models.generator);
  if (latent == nullptr) throw std::invalid_argument("code re-seeding: the generator has no categorical latent");
  if (source.dim() != 1 || source.size(0) != latent->codes.size(0))
    throw std::invalid_argument("code re-seeding: the source map has the wrong size");
  remap(latent->codes);
  if (models.generator_ema) remap(categorical_latent(models.generator_ema)->codes);
  if (auto* state = find_adam_state(optimizer_g, latent->codes)) {
    remap(state->exp_avg());
    remap(state->exp_avg_sq());
  }
}

}  // namespace distgan
