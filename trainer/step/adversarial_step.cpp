#include "trainer/step/adversarial_step.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>

#include "trainer/model/autocast.h"
#include "trainer/model/ema.h"
#include "trainer/model/optimizer_state.h"

namespace distgan {

namespace {

std::vector<torch::Tensor> batchnorm_running_stats(torch::nn::Module& module) {
  std::vector<torch::Tensor> stats;
  for (auto& b : module.named_buffers()) {
    const std::string& name = b.key();
    if (name.size() >= 12 && (name.compare(name.size() - 12, 12, "running_mean") == 0)) stats.push_back(b.value());
    if (name.size() >= 11 && (name.compare(name.size() - 11, 11, "running_var") == 0)) stats.push_back(b.value());
  }
  return stats;
}

}  // namespace

AdversarialStep::AdversarialStep(GanModels models, cluster::Communicator& comm, const StepOptions& options)
    : models_(std::move(models)), comm_(comm), options_(options) {
  opt_g_ = std::make_unique<torch::optim::Adam>(
      models_.generator->parameters(),
      torch::optim::AdamOptions(options.lr_g).betas({options.betas_g[0], options.betas_g[1]}));
  opt_d_ = std::make_unique<torch::optim::Adam>(
      models_.discriminator->parameters(),
      torch::optim::AdamOptions(options.lr_d).betas({options.betas_d[0], options.betas_d[1]}));
  reduce_g_ = std::make_unique<cluster::GradientReducer>(models_.generator->parameters(), comm, options.bucket_bytes);
  reduce_d_ =
      std::make_unique<cluster::GradientReducer>(models_.discriminator->parameters(), comm, options.bucket_bytes);
}

void AdversarialStep::broadcast_from_root() {
  torch::NoGradGuard no_grad;
  for (torch::nn::Module* m : {models_.generator.ptr().get(), models_.discriminator.ptr().get(),
                               models_.generator_ema ? models_.generator_ema.ptr().get() : nullptr}) {
    if (m == nullptr) continue;
    for (auto& p : m->parameters()) comm_.broadcast(p, 0);
    for (auto& b : m->buffers()) comm_.broadcast(b, 0);
  }
  broadcast_optimizer_state(*opt_g_, models_.generator->parameters());
  broadcast_optimizer_state(*opt_d_, models_.discriminator->parameters());
}

// Adam's state after a resume exists on rank 0 only: first the step counts (-1: no state yet), then
// the moments of every parameter that has state.
void AdversarialStep::broadcast_optimizer_state(torch::optim::Adam& optimizer, const std::vector<torch::Tensor>& params) {
  torch::NoGradGuard no_grad;
  torch::Tensor steps = torch::full({static_cast<int64_t>(params.size())}, -1, torch::kInt64);
  for (size_t i = 0; i < params.size(); ++i)
    if (const auto* state = find_adam_state(optimizer, params[i])) steps[static_cast<int64_t>(i)] = state->step();
  comm_.broadcast(steps, 0);
  const auto counts = steps.accessor<int64_t, 1>();
  for (size_t i = 0; i < params.size(); ++i) {
    if (counts[static_cast<int64_t>(i)] < 0) continue;
    auto& state = adam_state(optimizer, params[i]);
    state.step(counts[static_cast<int64_t>(i)]);
    comm_.broadcast(state.exp_avg(), 0);
    comm_.broadcast(state.exp_avg_sq(), 0);
  }
}

torch::Tensor AdversarialStep::generate_for_step(const torch::Tensor& z, const torch::Tensor& labels, bool for_g_step) {
  models_.generator->train();
  BF16Autocast autocast(options_.amp_bf16);
  if (for_g_step) return generate(models_.generator, z, labels);
  torch::NoGradGuard no_grad;
  return generate(models_.generator, z, labels);
}

DStepStats AdversarialStep::d_step(const DStepInput& in) {
  auto& d = models_.discriminator;
  d->train();
  reduce_d_->zero_grad();
  const bool r1 = in.apply_r1 && options_.r1_gamma > 0;
  // R1 needs the gradient of D(real) with respect to the real images: a leaf that requires grad.
  const torch::Tensor real = r1 ? in.real.detach().requires_grad_(true) : in.real;
  torch::Tensor real_logits, fake_logits;
  {
    BF16Autocast autocast(options_.amp_bf16);
    real_logits = discriminate(d, real, in.real_labels).to(torch::kFloat32);
    fake_logits = discriminate(d, in.fake.detach(), in.fake_labels).to(torch::kFloat32);
  }
  torch::Tensor loss = discriminator_loss(options_.loss, real_logits, fake_logits);
  DStepStats stats;
  if (r1) {
    const torch::Tensor penalty = squared_input_gradient(real_logits, real);
    stats.penalty = penalty.item<double>();
    stats.penalised = true;
    // Lazy regularisation (StyleGAN2): every r1_every-th step, weighted by r1_every.
    loss = loss + (options_.r1_gamma / 2 * static_cast<double>(options_.r1_every)) * penalty;
  }
  if (options_.loss == LossKind::kWganGp) {
    TORCH_CHECK(in.gp_eps.defined(), "d_step: the wgan-gp loss needs gp_eps");
    const torch::Tensor penalty = gradient_penalty(
        [&](const torch::Tensor& x) {
          BF16Autocast autocast(options_.amp_bf16);
          return discriminate(d, x, in.real_labels).to(torch::kFloat32);
        },
        in.real, in.fake, in.gp_eps);
    stats.penalty = penalty.item<double>();
    stats.penalised = true;
    loss = loss + options_.gp_lambda * penalty;
  }
  loss.backward();
  stats.loss_d = loss.item<double>();
  // Every rank's loss rides with the gradients: a non-finite one anywhere makes the average so.
  const double mean_loss = reduce_d_->average_gradients(stats.loss_d);
  comm_seconds_ += reduce_d_->last_wait_seconds();
  stats.grad_norm = reduce_d_->gradient_norm();
  stats.skipped = !std::isfinite(mean_loss) || !std::isfinite(stats.grad_norm);
  if (!stats.skipped) opt_d_->step();
  stats.d_real = torch::sigmoid(real_logits.detach()).mean().item<double>();
  stats.d_fake = torch::sigmoid(fake_logits.detach()).mean().item<double>();
  return stats;
}

double top_k_share(double keep, double decay, int64_t epoch) {
  return keep >= 1 ? 1.0 : std::max(keep, std::pow(decay, static_cast<double>(epoch)));
}

GStepStats AdversarialStep::g_step(const torch::Tensor& fake, const torch::Tensor& fake_labels, double keep_share) {
  reduce_g_->zero_grad();
  // D's weights need no gradient here (only its input does): skipping them saves a third of D's
  // backward work, and D's gradients are not left holding the G step's values.
  auto d_params = models_.discriminator->parameters();
  for (auto& p : d_params) p.requires_grad_(false);
  torch::Tensor loss;
  try {
    torch::Tensor logits;
    {
      BF16Autocast autocast(options_.amp_bf16);
      logits = discriminate(models_.discriminator, fake, fake_labels).to(torch::kFloat32);
    }
    const int64_t b = logits.size(0), keep = std::clamp<int64_t>(std::ceil(keep_share * double(b) - 1e-9), 1, b);
    // Sinha et al.: the gradients of the fakes D scores lowest help G least (they pull it off good modes).
    if (keep < b) logits = std::get<0>(logits.topk(keep));
    loss = generator_loss(options_.loss, logits);
    loss.backward();
  } catch (...) {
    for (auto& p : d_params) p.requires_grad_(true);
    throw;
  }
  for (auto& p : d_params) p.requires_grad_(true);
  GStepStats stats;
  stats.loss_g = loss.item<double>();
  const double mean_loss = reduce_g_->average_gradients(stats.loss_g);
  comm_seconds_ += reduce_g_->last_wait_seconds();
  stats.grad_norm = reduce_g_->gradient_norm();
  stats.skipped = !std::isfinite(mean_loss) || !std::isfinite(stats.grad_norm);
  if (!stats.skipped) opt_g_->step();
  return stats;
}

void AdversarialStep::average_batchnorm_statistics() {
  torch::NoGradGuard no_grad;
  for (torch::nn::Module* m : {models_.generator.ptr().get(), models_.discriminator.ptr().get()})
    for (auto& t : batchnorm_running_stats(*m)) comm_.allreduce(t, {cluster::ReduceOp::kAverage})->wait();
  if (models_.generator_ema) ema_copy_buffers(*models_.generator_ema, *models_.generator);
}

double linear_decay_factor(int64_t step, int64_t steps, double decay_start) {
  const double begin = decay_start * double(steps), done = double(step - 1);
  if (steps <= 0 || done <= begin) return 1.0;
  return std::max(0.0, 1.0 - (done - begin) / (double(steps) - begin));
}

void AdversarialStep::scale_learning_rates(double factor) {
  for (auto [optimizer, lr] : {std::pair{opt_g_.get(), options_.lr_g}, std::pair{opt_d_.get(), options_.lr_d}})
    for (auto& group : optimizer->param_groups())
      static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr * factor);
}

void AdversarialStep::update_ema(double beta) {
  if (models_.generator_ema) ema_update(*models_.generator_ema, *models_.generator, beta);
}

torch::Tensor AdversarialStep::sample(const torch::Tensor& z, const torch::Tensor& labels, bool use_ema) {
  torch::NoGradGuard no_grad;
  auto& g = use_ema && models_.generator_ema ? models_.generator_ema : models_.generator;
  g->eval();
  torch::Tensor out = generate(g, z, labels);
  models_.generator->train();
  return out;
}

std::string AdversarialStep::compare_replicas() {
  std::vector<std::string> names;
  std::vector<double> sums;
  std::vector<std::pair<std::string, torch::nn::Module*>> modules{{"generator/", models_.generator.ptr().get()},
                                                                  {"discriminator/", models_.discriminator.ptr().get()}};
  if (models_.generator_ema) modules.emplace_back("generator_ema/", models_.generator_ema.ptr().get());
  for (const auto& [prefix, module] : modules) {
    auto add = [&](const std::string& name, const torch::Tensor& t) {
      const torch::Tensor host = t.detach().to(torch::kCPU).contiguous();
      names.push_back(prefix + name);
      sums.push_back(static_cast<double>(
          crc32(0, static_cast<const Bytef*>(host.data_ptr()), static_cast<uInt>(host.numel() * host.element_size()))));
    };
    // Parameters only: BatchNorm running statistics differ between ranks by design until averaged.
    for (const auto& p : module->named_parameters()) add(p.key(), p.value());
  }
  const std::vector<double> all = comm_.allgather(sums);
  const size_t n = sums.size();
  for (size_t i = 0; i < n; ++i) {
    std::string differing;
    for (int r = 1; r < comm_.size(); ++r)
      if (all[static_cast<size_t>(r) * n + i] != all[i]) differing += (differing.empty() ? "" : ", ") + std::to_string(r);
    if (!differing.empty()) return names[i] + " differs between rank 0 and rank(s) " + differing;
  }
  return "";
}

double AdversarialStep::take_communication_seconds() {
  const double s = comm_seconds_;
  comm_seconds_ = 0;
  return s;
}

}  // namespace distgan
