#include "trainer/models.h"

#include <stdexcept>

namespace distgan {

namespace nn = torch::nn;

namespace {

constexpr double kInitStd = 0.02;      // DCGAN paper: weights from N(0, 0.02)
constexpr double kLeakySlope = 0.2;    // DCGAN discriminator activations

nn::ConvTranspose2d up(int64_t in, int64_t out, int64_t k, int64_t s, int64_t p, bool bias) {
  return nn::ConvTranspose2d(nn::ConvTranspose2dOptions(in, out, k).stride(s).padding(p).bias(bias));
}
nn::Conv2d down(int64_t in, int64_t out, int64_t k, int64_t s, int64_t p, bool bias) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(s).padding(p).bias(bias));
}
// In place: saves an allocation and a pass over memory per activation (the layers before them do
// not need their outputs for backward).
nn::LeakyReLU leaky() { return nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(kLeakySlope).inplace(true)); }
nn::ReLU relu() { return nn::ReLU(nn::ReLUOptions().inplace(true)); }

// DCGAN for 28x28 (base 7) and 32x32 (base 4 + one more upsampling) images with C channels:
//   G: ConvT(z, 4ch, base) [as LatentProjection] BN ReLU, ConvT(4ch, 2ch, 4, 2, 1) BN ReLU, [ConvT(2ch, 2ch, 4, 2, 1) BN ReLU,]
//      ConvT(2ch, C, 4, 2, 1) Tanh
//   D: Conv(C, ch, 4, 2, 1) LReLU, Conv(ch, 2ch, 4, 2, 1) BN LReLU, [Conv(2ch, 2ch, 4, 2, 1) BN LReLU,]
//      Conv(2ch, 1, base) -> logit
// No biases before batch norm. For 28x28 this is exactly the layout the benchmark's PyTorch peer uses.
GanModels dcgan(const ModelSpec& s) {
  if (s.sample_shape.size() != 3)
    throw std::invalid_argument("model.name: dcgan needs image data [C, H, W]; this dataset holds vectors "
                                "(use model.name: mlp)");
  const int64_t c = s.sample_shape[0], h = s.sample_shape[1], w = s.sample_shape[2];
  if (h != w || (h != 28 && h != 32))
    throw std::invalid_argument("model.name: dcgan supports 28x28 and 32x32 images; this dataset's are " +
                                std::to_string(h) + "x" + std::to_string(w));
  const int64_t ch = s.ch, base = h == 28 ? 7 : 4;
  GanModels m;
  m.generator = nn::Sequential(LatentProjection(s.z_dim, 4 * ch, base), nn::BatchNorm2d(4 * ch), relu(),
                               up(4 * ch, 2 * ch, 4, 2, 1, false), nn::BatchNorm2d(2 * ch), relu());
  if (h == 32) {
    m.generator->push_back(up(2 * ch, 2 * ch, 4, 2, 1, false));
    m.generator->push_back(nn::BatchNorm2d(2 * ch));
    m.generator->push_back(relu());
  }
  m.generator->push_back(up(2 * ch, c, 4, 2, 1, true));
  m.generator->push_back(nn::Tanh());

  m.discriminator = nn::Sequential(down(c, ch, 4, 2, 1, true), leaky(), down(ch, 2 * ch, 4, 2, 1, false),
                                   nn::BatchNorm2d(2 * ch), leaky());
  if (h == 32) {
    m.discriminator->push_back(down(2 * ch, 2 * ch, 4, 2, 1, false));
    m.discriminator->push_back(nn::BatchNorm2d(2 * ch));
    m.discriminator->push_back(leaky());
  }
  m.discriminator->push_back(down(2 * ch, 1, base, 1, 0, true));
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
  for (int64_t layer = 0; layer < s.mlp_depth; ++layer) {
    m.generator->push_back(nn::Linear(nn::LinearOptions(g_in, width).bias(!s.mlp_batchnorm)));
    if (s.mlp_batchnorm) m.generator->push_back(nn::BatchNorm1d(width));
    m.generator->push_back(relu());
    m.discriminator->push_back(nn::Linear(d_in, width));
    m.discriminator->push_back(leaky());
    g_in = d_in = width;
  }
  m.generator->push_back(nn::Linear(g_in, d));
  m.discriminator->push_back(nn::Linear(d_in, 1));
  m.discriminator->push_back(nn::Flatten(nn::FlattenOptions().start_dim(0)));
  return m;
}

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

LatentProjectionImpl::LatentProjectionImpl(int64_t z_dim, int64_t channels, int64_t kernel) {
  weight = register_parameter("weight", torch::empty({z_dim, channels, kernel, kernel}));
}

torch::Tensor LatentProjectionImpl::forward(const torch::Tensor& z) {
  const int64_t z_dim = weight.size(0);
  return torch::mm(z.reshape({-1, z_dim}), weight.view({z_dim, -1}))
      .view({z.size(0), weight.size(1), weight.size(2), weight.size(3)});
}

GanModels build_models(const ModelSpec& spec) {
  GanModels m;
  if (spec.name == "dcgan") m = dcgan(spec);
  else if (spec.name == "mlp") m = mlp(spec);
  else throw std::invalid_argument("model.name: unknown model '" + spec.name + "' (expected dcgan or mlp)");
  dcgan_init(*m.generator);
  dcgan_init(*m.discriminator);
  return m;
}

int64_t parameter_count(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

}  // namespace distgan
