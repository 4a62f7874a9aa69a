#include "trainer/model/models.h"

#include "trainer/model/resnet.h"
#include "trainer/outputs/console_log.h"

#include <cmath>
#include <stdexcept>

namespace distgan {

namespace nn = torch::nn;

namespace {

constexpr double kInitStd = 0.02;      // DCGAN paper: weights from N(0, 0.02)
constexpr double kLeakySlope = 0.2;    // DCGAN discriminator activations

OnednnConvTranspose2d up(const ModelSpec& spec, int64_t in, int64_t out, int64_t k, int64_t s, int64_t p, bool bias) {
  return OnednnConvTranspose2d(nn::ConvTranspose2dOptions(in, out, k).stride(s).padding(p).bias(bias),
                               spec.onednn_conv_transpose);
}
WeightFirstConv2d down(int64_t in, int64_t out, int64_t k, int64_t s, int64_t p, bool bias) {
  return WeightFirstConv2d(in, out, k, s, p, bias);
}
// In place: saves an allocation and a pass over memory per activation (the layers before them do
// not need their outputs for backward).
nn::LeakyReLU leaky() { return nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(kLeakySlope).inplace(true)); }
nn::ReLU relu() { return nn::ReLU(nn::ReLUOptions().inplace(true)); }

// D's layers: spectrally normalised ones when the spec asks for them.
torch::nn::AnyModule d_conv(const ModelSpec& s, int64_t in, int64_t out, int64_t k, int64_t st, int64_t p, bool bias) {
  if (s.d_spectral_norm) return torch::nn::AnyModule(SNConv2d(in, out, k, st, p));
  return torch::nn::AnyModule(down(in, out, k, st, p, bias));
}
torch::nn::AnyModule d_linear(const ModelSpec& s, int64_t in, int64_t out) {
  if (s.d_spectral_norm) return torch::nn::AnyModule(SNLinear(in, out));
  return torch::nn::AnyModule(nn::Linear(in, out));
}

// DCGAN for 28x28 (base 7), 32x32 (base 4 + one more upsampling) and 64x64 (the classic DCGAN-64
// of Radford et al.) images with C channels:
//   28/32: G: ConvT(z, 4ch, base) [as LatentProjection] BN ReLU, ConvT(4ch, 2ch, 4, 2, 1) BN ReLU,
//             [ConvT(2ch, 2ch, 4, 2, 1) BN ReLU,] ConvT(2ch, C, 4, 2, 1) Tanh
//          D: Conv(C, ch, 4, 2, 1) LReLU, Conv(ch, 2ch, 4, 2, 1) BN LReLU, [Conv(2ch, 2ch, 4, 2, 1) BN LReLU,]
//             Conv(2ch, 1, base) -> logit
//   64:    G: ConvT(z, 8ch, 4) BN ReLU, then ConvT(4, 2, 1) BN ReLU to 4ch, 2ch, ch; ConvT(ch, C, 4, 2, 1) Tanh
//          D: Conv(C, ch, 4, 2, 1) LReLU, then Conv(4, 2, 1) BN LReLU to 2ch, 4ch, 8ch; Conv(8ch, 1, 4)
// No biases before batch norm. For 28x28 this is exactly the layout the benchmark's PyTorch peer uses.
GanModels dcgan64(const ModelSpec& s) {
  const int64_t c = s.sample_shape[0], ch = s.ch;
  GanModels m;
  m.generator = nn::Sequential(LatentProjection(s.z_dim, 8 * ch, 4), nn::BatchNorm2d(8 * ch), relu());
  for (int64_t width = 8 * ch; width > ch; width /= 2) {
    m.generator->push_back(up(s, width, width / 2, 4, 2, 1, false));
    m.generator->push_back(nn::BatchNorm2d(width / 2));
    m.generator->push_back(relu());
  }
  m.generator->push_back(up(s, ch, c, 4, 2, 1, true));
  m.generator->push_back(nn::Tanh());

  const bool bn = !s.d_spectral_norm;
  m.discriminator = nn::Sequential();
  m.discriminator->push_back(d_conv(s, c, ch, 4, 2, 1, true));
  m.discriminator->push_back(leaky());
  for (int64_t width = ch; width < 8 * ch; width *= 2) {
    m.discriminator->push_back(d_conv(s, width, 2 * width, 4, 2, 1, !bn));
    if (bn) m.discriminator->push_back(nn::BatchNorm2d(2 * width));
    m.discriminator->push_back(leaky());
  }
  m.discriminator->push_back(d_conv(s, 8 * ch, 1, 4, 1, 0, true));
  m.discriminator->push_back(nn::Flatten(nn::FlattenOptions().start_dim(0)));
  return m;
}

GanModels dcgan(const ModelSpec& s) {
  if (s.sample_shape.size() != 3)
    throw std::invalid_argument("model.name: dcgan needs image data [C, H, W]; this dataset holds vectors "
                                "(use model.name: mlp)");
  const int64_t c = s.sample_shape[0], h = s.sample_shape[1], w = s.sample_shape[2];
  if (h != w || (h != 28 && h != 32 && h != 64))
    throw std::invalid_argument("model.name: dcgan supports 28x28, 32x32 and 64x64 images; this dataset's are " +
                                std::to_string(h) + "x" + std::to_string(w) + " (model.name: resnet takes 28 to 256)");
  if (h == 64) return dcgan64(s);
  const int64_t ch = s.ch, base = h == 28 ? 7 : 4;
  const int64_t g_in = s.z_dim;
  GanModels m;
  m.generator = nn::Sequential(LatentProjection(g_in, 4 * ch, base), nn::BatchNorm2d(4 * ch), relu(),
                               up(s, 4 * ch, 2 * ch, 4, 2, 1, false), nn::BatchNorm2d(2 * ch), relu());
  if (h == 32) {
    m.generator->push_back(up(s, 2 * ch, 2 * ch, 4, 2, 1, false));
    m.generator->push_back(nn::BatchNorm2d(2 * ch));
    m.generator->push_back(relu());
  }
  m.generator->push_back(up(s, 2 * ch, c, 4, 2, 1, true));
  m.generator->push_back(nn::Tanh());

  const bool bn = !s.d_spectral_norm;  // spectral norm replaces D's batch norm (as in SN-GAN)
  m.discriminator = nn::Sequential();
  m.discriminator->push_back(d_conv(s, c, ch, 4, 2, 1, true));
  m.discriminator->push_back(leaky());
  for (int64_t layer = 0; layer < (h == 32 ? 2 : 1); ++layer) {
    m.discriminator->push_back(d_conv(s, layer == 0 ? ch : 2 * ch, 2 * ch, 4, 2, 1, !bn));
    if (bn) m.discriminator->push_back(nn::BatchNorm2d(2 * ch));
    m.discriminator->push_back(leaky());
  }
  m.discriminator->push_back(d_conv(s, 2 * ch, 1, base, 1, 0, true));
  m.discriminator->push_back(nn::Flatten(nn::FlattenOptions().start_dim(0)));  // [B, 1, 1, 1] -> [B]
  return m;
}

// MLP for vectors of size D: G = [Linear(width) (BN) ReLU] x depth, Linear(D);
// D = [Linear(width) LeakyReLU] x depth, Linear(1) -> logit.
GanModels mlp(const ModelSpec& s) {
  if (s.sample_shape.size() != 1)
    throw std::invalid_argument("model.name: mlp needs vector data [N, D]; this dataset holds images "
                                "(use model.name: dcgan)");
  const int64_t d = s.sample_shape[0], width = s.mlp_width;
  GanModels m;
  m.generator = nn::Sequential();
  m.discriminator = nn::Sequential();
  int64_t g_in = s.z_dim, d_in = d;
  if (s.latent_categories > 0) {
    m.generator->push_back(CategoricalLatent(s.z_dim, s.latent_categories, s.latent_noise_scale));
    g_in = 2 * s.z_dim - 1;
  }
  for (int64_t layer = 0; layer < s.mlp_depth; ++layer) {
    m.generator->push_back(nn::Linear(nn::LinearOptions(g_in, width).bias(!s.mlp_batchnorm)));
    if (s.mlp_batchnorm) m.generator->push_back(nn::BatchNorm1d(width));
    m.generator->push_back(relu());
    m.discriminator->push_back(d_linear(s, d_in, width));
    m.discriminator->push_back(leaky());
    g_in = d_in = width;
  }
  m.generator->push_back(nn::Linear(g_in, d));
  m.discriminator->push_back(d_linear(s, d_in, 1));
  m.discriminator->push_back(nn::Flatten(nn::FlattenOptions().start_dim(0)));
  return m;
}

// The channels (or width) of D's features before its output layer: the projection's size.
int64_t d_feature_size(const ModelSpec& s) {
  if (s.name == "resnet") return resnet_d_features(s);
  if (s.name == "dcgan") return (s.sample_shape.size() == 3 && s.sample_shape[1] == 64 ? 8 : 2) * s.ch;
  return s.mlp_width;
}

// G and D of the named architecture, not yet initialised.
GanModels build_architecture(const ModelSpec& s) {
  if (s.name == "resnet") return resnet(s);
  if (s.name == "dcgan") return dcgan(s);
  if (s.name == "mlp") return mlp(s);
  throw std::invalid_argument("model.name: unknown model '" + s.name + "' (expected dcgan, resnet or mlp)");
}

// Conditional G: resnet's class-conditional batch norms are built in; dcgan and mlp take z * embed(y).
bool g_uses_class_embedding(const ModelSpec& s) { return s.num_classes > 0 && s.name != "resnet"; }

void dcgan_init(nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& child : module.modules(/*include_self=*/false)) {
    const std::string kind = child->name();
    auto params = child->named_parameters(/*recurse=*/false);
    const bool norm = kind.find("BatchNorm") != std::string::npos;
    for (auto& p : params) {
      if (p.key() == "weight") p.value().normal_(norm ? 1.0 : 0.0, kInitStd);
      else if (p.key() == "bias") p.value().zero_();
    }
  }
}

}  // namespace

CategoricalLatentImpl::CategoricalLatentImpl(int64_t z_dim, int64_t categories, double noise_scale_)
    : noise_scale(noise_scale_) {
  if (z_dim < 2 || categories < 1)
    throw std::invalid_argument("model.latent_categories: needs z_dim >= 2 and at least 1 category (got z_dim " +
                                std::to_string(z_dim) + ", " + std::to_string(categories) + " categories)");
  codes = register_parameter("codes", torch::randn({categories, z_dim}));
  off_data_checks = register_buffer("off_data_checks", torch::zeros({categories}, torch::kInt64));
}

torch::Tensor CategoricalLatentImpl::category(const torch::Tensor& z) const {
  const int64_t k = codes.size(0);
  // Phi(z0) is uniform on (0, 1) for z0 ~ N(0, 1), so the K bins are equally likely.
  const torch::Tensor u = 0.5 * torch::erfc(-z.select(1, 0).to(torch::kFloat64) / std::sqrt(2.0));
  return (u * double(k)).floor().to(torch::kInt64).clamp(0, k - 1).to(z.device());
}

torch::Tensor CategoricalLatentImpl::forward(const torch::Tensor& z) {
  return torch::cat({z.narrow(1, 1, z.size(1) - 1) * noise_scale, codes.index_select(0, category(z)).to(z.dtype())}, 1);
}

LatentProjectionImpl::LatentProjectionImpl(int64_t z_dim, int64_t channels, int64_t kernel) {
  weight = register_parameter("weight", torch::empty({z_dim, channels, kernel, kernel}));
}

torch::Tensor LatentProjectionImpl::forward(const torch::Tensor& z) {
  const int64_t z_dim = weight.size(0);
  return torch::mm(z.reshape({-1, z_dim}), weight.view({z_dim, -1}))
      .view({z.size(0), weight.size(1), weight.size(2), weight.size(3)});
}

namespace {

// Computing the transposed convolutions' weight gradients last pays when it lets bigger gradients
// start their all-reduce sooner: when the layers they would otherwise wait for (DCGAN's first
// layer, a matrix product) hold more gradient bytes than they do. DCGAN-28 at ch 64: 1.25 M
// against 0.53 M (measured: the wait at 1 Gbit/s fell from 27.4% to 20.8% of a step). Not
// DCGAN-32 (0.4 M against 0.8 M) or DCGAN-64 (0.8 M against 2.8 M), where it would make the
// largest bucket the last.
void order_weight_gradients(nn::Module& generator) {
  std::vector<std::shared_ptr<OnednnConvTranspose2dImpl>> transposed;
  int64_t transposed_numel = 0, other_numel = 0;
  for (const auto& child : generator.modules(/*include_self=*/false))
    if (auto conv = std::dynamic_pointer_cast<OnednnConvTranspose2dImpl>(child)) transposed.push_back(conv);
  for (const auto& conv : transposed)
    for (const auto& p : conv->parameters(/*recurse=*/false)) transposed_numel += p.numel();
  for (const auto& p : generator.parameters()) other_numel += p.numel();
  other_numel -= transposed_numel;
  for (const auto& conv : transposed) conv->weight_gradient_last = other_numel > transposed_numel;
}

}  // namespace

GanModels build_models(const ModelSpec& spec) {
  GanModels m = build_architecture(spec);
  order_weight_gradients(*m.generator);
  // The order of the random draws (construction, embeddings, initialisation) is kept as it was
  // before resnet existed, so seeded dcgan and mlp runs start from the same weights.
  if (g_uses_class_embedding(spec))
    m.generator->register_module("class_embedding", nn::Embedding(spec.num_classes, spec.z_dim));
  if (spec.num_classes > 0)
    m.discriminator->register_module("class_projection", nn::Embedding(spec.num_classes, d_feature_size(spec)));
  for (nn::Sequential* module : {&m.generator, &m.discriminator}) {
    if (spec.name == "resnet") resnet_init(**module);
    else dcgan_init(**module);
  }
  if (g_uses_class_embedding(spec)) {
    torch::NoGradGuard no_grad;
    // G's input is z * embed(y), elementwise: N(0, 1) codes keep the input's scale at 1.
    m.generator->named_parameters()["class_embedding.weight"].normal_(0.0, 1.0);
  }
  if (spec.ema) {
    m.generator_ema = build_architecture(spec).generator;
    if (g_uses_class_embedding(spec))
      m.generator_ema->register_module("class_embedding", nn::Embedding(spec.num_classes, spec.z_dim));
    torch::NoGradGuard no_grad;
    auto from = m.generator->named_parameters();
    for (auto& p : m.generator_ema->named_parameters()) {
      p.value().copy_(from[p.key()]);
      p.value().requires_grad_(false);
    }
    auto buffers = m.generator->named_buffers();
    for (auto& b : m.generator_ema->named_buffers()) b.value().copy_(buffers[b.key()]);
  }
  return m;
}

void power_iteration_step(const torch::Tensor& weight, torch::Tensor& u, torch::Tensor& v) {
  torch::NoGradGuard no_grad;
  const torch::Tensor wd = weight.detach().reshape({weight.size(0), -1});
  v.copy_(torch::nn::functional::normalize(torch::mv(wd.t(), u), torch::nn::functional::NormalizeFuncOptions().dim(0).eps(1e-12)));
  u.copy_(torch::nn::functional::normalize(torch::mv(wd, v), torch::nn::functional::NormalizeFuncOptions().dim(0).eps(1e-12)));
}

torch::Tensor spectral_normalized(const torch::Tensor& weight, torch::Tensor& u, torch::Tensor& v, bool update) {
  const torch::Tensor w = weight.reshape({weight.size(0), -1});
  if (update) power_iteration_step(weight, u, v);
  // Clones: u and v change in place at the next forward, and this graph must keep today's values.
  const torch::Tensor sigma = torch::dot(u.clone(), torch::mv(w, v.clone()));
  return weight / sigma;
}

SNConv2dImpl::SNConv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride_, int64_t padding_)
    : stride(stride_), padding(padding_) {
  weight = register_parameter("weight", torch::empty({out, in, kernel, kernel}));
  bias = register_parameter("bias", torch::zeros({out}));
  // Fixed start vectors (not random): every rank builds the same ones without communication.
  sn_u = register_buffer("sn_u", torch::full({out}, 1.0 / std::sqrt(double(out))));
  sn_v = register_buffer("sn_v", torch::full({in * kernel * kernel}, 1.0 / std::sqrt(double(in * kernel * kernel))));
}

torch::Tensor SNConv2dImpl::forward(const torch::Tensor& x) {
  const torch::Tensor w = spectral_normalized(weight, sn_u, sn_v, is_training() && power_iteration);
  if (!weight_gradient_first_applies(x)) return torch::conv2d(x, w, bias, stride, padding);
  return conv2d_weight_gradient_first(x, w, bias, {{stride, stride}, {padding, padding}});
}

SNLinearImpl::SNLinearImpl(int64_t in, int64_t out) {
  weight = register_parameter("weight", torch::empty({out, in}));
  bias = register_parameter("bias", torch::zeros({out}));
  sn_u = register_buffer("sn_u", torch::full({out}, 1.0 / std::sqrt(double(out))));
  sn_v = register_buffer("sn_v", torch::full({in}, 1.0 / std::sqrt(double(in))));
}

torch::Tensor SNLinearImpl::forward(const torch::Tensor& x) {
  return torch::linear(x, spectral_normalized(weight, sn_u, sn_v, is_training() && power_iteration), bias);
}

namespace {
std::shared_ptr<nn::EmbeddingImpl> child_embedding(nn::Sequential& module, const char* name) {
  for (const auto& c : module->named_children())
    if (c.key() == name) return std::dynamic_pointer_cast<nn::EmbeddingImpl>(c.value());
  return nullptr;
}
}  // namespace

void advance_power_iteration(nn::Module& module) {
  for (auto& child : module.modules(/*include_self=*/false)) {
    if (auto conv = std::dynamic_pointer_cast<SNConv2dImpl>(child)) power_iteration_step(conv->weight, conv->sn_u, conv->sn_v);
    if (auto linear = std::dynamic_pointer_cast<SNLinearImpl>(child)) power_iteration_step(linear->weight, linear->sn_u, linear->sn_v);
  }
}

PowerIterationPause::PowerIterationPause(nn::Module& module, bool pause) {
  if (!pause) return;
  for (auto& child : module.modules(/*include_self=*/false)) {
    if (auto conv = std::dynamic_pointer_cast<SNConv2dImpl>(child)) flags_.push_back(&conv->power_iteration);
    if (auto linear = std::dynamic_pointer_cast<SNLinearImpl>(child)) flags_.push_back(&linear->power_iteration);
  }
  for (bool* flag : flags_) *flag = false;
}

PowerIterationPause::~PowerIterationPause() {
  for (bool* flag : flags_) *flag = true;
}

OnednnConvTranspose2dImpl::OnednnConvTranspose2dImpl(const nn::ConvTranspose2dOptions& o, bool use_onednn)
    : nn::ConvTranspose2dImpl(o),
      transpose_options(o),
      use_onednn(use_onednn),
      onednn_takes_options(o.groups() == 1 && *o.dilation() == *torch::ExpandingArray<2>(1) &&
                           *o.output_padding() == *torch::ExpandingArray<2>(0) &&
                           torch::enumtype::get_enum_name(o.padding_mode()) == "kZeros"),
      geometry{{(*o.stride())[0], (*o.stride())[1]}, {(*o.padding())[0], (*o.padding())[1]}} {}

torch::Tensor OnednnConvTranspose2dImpl::forward(const torch::Tensor& input,
                                                 const c10::optional<at::IntArrayRef>& output_size) {
  if (!use_onednn || !onednn_takes_options || output_size || !onednn_conv_transpose_applies(input, weight))
    return nn::ConvTranspose2dImpl::forward(input, output_size);
  try {
    return onednn_conv_transpose2d(input, weight, bias, geometry, weight_gradient_last);
  } catch (const std::runtime_error& e) {  // oneDNN refused the shape (its kernels are made in the forward)
    log_warning("distgan: warning: %s; this layer uses LibTorch's kernel from now on\n", e.what());
    use_onednn = false;
    return nn::ConvTranspose2dImpl::forward(input, output_size);
  }
}

bool OnednnConvTranspose2dImpl::weight_gradient_runs_last() const {
  return weight_gradient_last && use_onednn && onednn_takes_options && onednn_compiled_in() && weight.device().is_cpu();
}

std::shared_ptr<nn::Module> OnednnConvTranspose2dImpl::clone(const c10::optional<torch::Device>& device) const {
  torch::NoGradGuard no_grad;
  auto copy = std::make_shared<OnednnConvTranspose2dImpl>(transpose_options, use_onednn);
  copy->weight_gradient_last = weight_gradient_last;
  auto copy_tensors = [&](const auto& from, auto&& to) {
    for (const auto& item : from) {
      const torch::Tensor t = device ? item.value().to(*device).clone() : item.value().clone();
      to[item.key()].set_data(t);
    }
  };
  copy_tensors(named_parameters(/*recurse=*/false), copy->named_parameters(false));
  copy_tensors(named_buffers(/*recurse=*/false), copy->named_buffers(false));
  copy->train(is_training());
  return copy;
}

bool is_conditional(nn::Sequential& module) {
  return child_embedding(module, "class_embedding") || child_embedding(module, "class_projection") ||
         has_class_conditional_norm(*module);
}

torch::Tensor generate(nn::Sequential& g, const torch::Tensor& z, const torch::Tensor& labels) {
  auto embedding = child_embedding(g, "class_embedding");
  if (!embedding) {
    ClassLabelScope scope(*g, labels);  // a conditional resnet G's batch norms take the labels
    return g->forward(z);
  }
  if (!labels.defined()) throw std::invalid_argument("a conditional generator needs class labels");
  // Multiplicative: a class-specific rescaling of every latent coordinate. G cannot ignore z this way
  // (concatenating a class code to z let G collapse to one image per class on Fashion-MNIST).
  return g->forward(z * embedding->forward(labels).to(z.scalar_type()));
}

torch::Tensor discriminate(nn::Sequential& d, const torch::Tensor& x, const torch::Tensor& labels) {
  auto projection = child_embedding(d, "class_projection");
  if (!projection) return d->forward(x);
  if (!labels.defined()) throw std::invalid_argument("a conditional discriminator needs class labels");
  // Every module but the output layer and the Flatten: h, then out(h) + <embed(y), sum-pooled h>.
  const auto layers = d->begin();
  const auto n = static_cast<std::ptrdiff_t>(d->size());
  torch::Tensor h = x;
  for (std::ptrdiff_t i = 0; i + 2 < n; ++i) h = layers[i].forward(h);
  const torch::Tensor out = layers[n - 1].forward(layers[n - 2].forward(h));
  const torch::Tensor pooled = h.dim() == 4 ? h.sum({2, 3}) : h;
  return out + (projection->forward(labels).to(pooled.scalar_type()) * pooled).sum(1);
}

void to_channels_last(nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& child : module.modules(/*include_self=*/false)) {
    torch::Tensor weight;
    if (auto c = std::dynamic_pointer_cast<nn::Conv2dImpl>(child)) weight = c->weight;
    else if (auto t = std::dynamic_pointer_cast<nn::ConvTranspose2dImpl>(child)) weight = t->weight;
    else if (auto s = std::dynamic_pointer_cast<SNConv2dImpl>(child)) weight = s->weight;
    if (weight.defined()) weight.set_data(weight.data().contiguous(torch::MemoryFormat::ChannelsLast));
  }
}

int64_t parameter_count(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

}  // namespace distgan
