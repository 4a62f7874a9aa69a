#include "trainer/model/resnet.h"

#include <stdexcept>

namespace distgan {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace {

// Widths (in units of model.ch) per image size: G's input width, then each up block's output;
// D's block outputs (the last one keeps 4x4).
struct ResnetWidths {
  int64_t base;  // G's first grid is base x base
  int64_t g_input;
  std::vector<int64_t> g_blocks, d_blocks;
  size_t d_downsampling;  // the first this many D blocks halve the size
};

ResnetWidths widths_for(int64_t size) {
  switch (size) {
    case 28: return {7, 4, {4, 4}, {2, 2, 2, 2}, 2};
    case 32: return {4, 4, {4, 4, 4}, {2, 2, 2, 2}, 3};
    case 64: return {4, 16, {16, 8, 4, 2}, {1, 2, 4, 8, 16}, 4};
    case 128: return {4, 16, {16, 8, 4, 2, 1}, {1, 2, 4, 8, 16, 16}, 5};
    case 256: return {4, 16, {16, 8, 8, 4, 2, 1}, {1, 2, 4, 8, 8, 16, 16}, 6};
    default:
      throw std::invalid_argument("model.name: resnet supports square images of 28, 32, 64, 128 and 256 pixels; "
                                  "this dataset's are " + std::to_string(size) + " pixels wide");
  }
}

WeightFirstConv2d conv(int64_t in, int64_t out, int64_t k) { return WeightFirstConv2d(in, out, k, 1, k / 2, true); }

nn::AnyModule batch_norm(int64_t channels, int64_t num_classes) {
  if (num_classes > 0) return nn::AnyModule(ConditionalBatchNorm2d(channels, num_classes));
  return nn::AnyModule(nn::BatchNorm2d(channels));
}

torch::Tensor upsample(const torch::Tensor& x) {
  return F::interpolate(x, F::InterpolateFuncOptions().scale_factor(std::vector<double>{2, 2}).mode(torch::kNearest));
}

// z [B, z_dim] -> [B, channels, base, base]
struct LatentToGridImpl : nn::Module {
  LatentToGridImpl(int64_t z_dim, int64_t channels, int64_t base) : channels(channels), base(base) {
    linear = register_module("linear", nn::Linear(z_dim, channels * base * base));
  }
  torch::Tensor forward(const torch::Tensor& z) { return linear(z).view({z.size(0), channels, base, base}); }
  nn::Linear linear{nullptr};
  int64_t channels, base;
};
TORCH_MODULE(LatentToGrid);

struct UpBlockImpl : nn::Module {
  UpBlockImpl(int64_t in, int64_t out, int64_t num_classes) {
    norm1 = batch_norm(in, num_classes);
    norm2 = batch_norm(out, num_classes);
    register_module("norm1", norm1.ptr());
    register_module("norm2", norm2.ptr());
    conv1 = register_module("conv1", conv(in, out, 3));
    conv2 = register_module("conv2", conv(out, out, 3));
    shortcut = register_module("shortcut", conv(in, out, 1));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor h = upsample(torch::relu(norm1.forward(x)));
    h = conv2(torch::relu(norm2.forward(conv1(h))));
    return h + shortcut(upsample(x));
  }
  nn::AnyModule norm1, norm2;
  WeightFirstConv2d conv1{nullptr}, conv2{nullptr}, shortcut{nullptr};
};
TORCH_MODULE(UpBlock);

struct GeneratorOutputImpl : nn::Module {
  GeneratorOutputImpl(int64_t in, int64_t channels, int64_t num_classes) {
    norm = batch_norm(in, num_classes);
    register_module("norm", norm.ptr());
    out = register_module("conv", conv(in, channels, 3));
  }
  torch::Tensor forward(const torch::Tensor& x) { return torch::tanh(out(torch::relu(norm.forward(x)))); }
  nn::AnyModule norm;
  WeightFirstConv2d out{nullptr};
};
TORCH_MODULE(GeneratorOutput);

// D's layers: spectrally normalised when the spec asks for them.
nn::AnyModule d_conv(bool sn, int64_t in, int64_t out, int64_t k) {
  if (sn) return nn::AnyModule(SNConv2d(in, out, k, 1, k / 2));
  return nn::AnyModule(conv(in, out, k));
}

struct DownBlockImpl : nn::Module {
  DownBlockImpl(int64_t in, int64_t out, bool downsample, bool first, bool sn) : downsample(downsample), first(first) {
    conv1 = d_conv(sn, in, out, 3);
    conv2 = d_conv(sn, out, out, 3);
    register_module("conv1", conv1.ptr());
    register_module("conv2", conv2.ptr());
    has_shortcut_conv = in != out || downsample;
    if (has_shortcut_conv) {
      shortcut = d_conv(sn, in, out, 1);
      register_module("shortcut", shortcut.ptr());
    }
  }
  torch::Tensor pool(const torch::Tensor& x) const { return downsample ? F::avg_pool2d(x, F::AvgPool2dFuncOptions(2)) : x; }
  torch::Tensor forward(const torch::Tensor& x) {
    torch::Tensor h = first ? x : torch::relu(x);
    h = pool(conv2.forward(torch::relu(conv1.forward(h))));
    if (!has_shortcut_conv) return h + x;
    // The first block pools before its 1x1 conv (same result, a quarter of the work); the others
    // after, as in SNGAN.
    return h + (first ? shortcut.forward(pool(x)) : pool(shortcut.forward(x)));
  }
  nn::AnyModule conv1, conv2, shortcut;
  bool downsample, first, has_shortcut_conv = false;
};
TORCH_MODULE(DownBlock);

// ReLU, then the sum over H and W: [B, C, H, W] -> [B, C] (the features the projection head uses).
struct ReluSumPoolImpl : nn::Module {
  torch::Tensor forward(const torch::Tensor& x) { return torch::relu(x).sum({2, 3}); }
};
TORCH_MODULE(ReluSumPool);

void check_images(const ModelSpec& s) {
  if (s.sample_shape.size() != 3)
    throw std::invalid_argument("model.name: resnet needs image data [C, H, W]; this dataset holds vectors (use model.name: mlp)");
  if (s.sample_shape[1] != s.sample_shape[2])
    throw std::invalid_argument("model.name: resnet needs square images; this dataset's are " + std::to_string(s.sample_shape[1]) +
                                "x" + std::to_string(s.sample_shape[2]));
}

}  // namespace

ConditionalBatchNorm2dImpl::ConditionalBatchNorm2dImpl(int64_t channels, int64_t num_classes) {
  norm = register_module("norm", nn::BatchNorm2d(nn::BatchNorm2dOptions(channels).affine(false)));
  gain = register_module("gain", nn::Embedding(num_classes, channels));
  bias = register_module("bias", nn::Embedding(num_classes, channels));
  torch::NoGradGuard no_grad;
  gain->weight.zero_();
  bias->weight.zero_();
}

torch::Tensor ConditionalBatchNorm2dImpl::forward(const torch::Tensor& x) {
  if (!labels.defined()) throw std::invalid_argument("a conditional generator needs class labels");
  const torch::Tensor g = (1 + gain(labels)).to(x.scalar_type()).unsqueeze(-1).unsqueeze(-1);
  const torch::Tensor b = bias(labels).to(x.scalar_type()).unsqueeze(-1).unsqueeze(-1);
  return norm(x) * g + b;
}

ClassLabelScope::ClassLabelScope(nn::Module& module, const torch::Tensor& labels) {
  for (auto& child : module.modules(/*include_self=*/false))
    if (auto norm = std::dynamic_pointer_cast<ConditionalBatchNorm2dImpl>(child)) {
      norm->labels = labels;
      norms_.push_back(norm);
    }
}

ClassLabelScope::~ClassLabelScope() {
  for (auto& norm : norms_) norm->labels = torch::Tensor();
}

bool has_class_conditional_norm(nn::Module& module) {
  for (auto& child : module.modules(/*include_self=*/false))
    if (std::dynamic_pointer_cast<ConditionalBatchNorm2dImpl>(child)) return true;
  return false;
}

void resnet_init(nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& child : module.modules(/*include_self=*/false)) {
    const std::string kind = child->name();
    if (kind.find("BatchNorm") != std::string::npos) continue;  // gain 1, bias 0 (torch's defaults)
    const bool embedding = kind.find("Embedding") != std::string::npos;
    for (auto& p : child->named_parameters(/*recurse=*/false)) {
      if (p.key() == "weight" && embedding) p.value().normal_(0.0, 0.02);  // D's projection head
      else if (p.key() == "weight") nn::init::xavier_uniform_(p.value());
      else if (p.key() == "bias") p.value().zero_();
    }
  }
  // After the loop, which also visits their embeddings: each class starts with gain 1 and bias 0.
  for (auto& child : module.modules(/*include_self=*/false))
    if (auto norm = std::dynamic_pointer_cast<ConditionalBatchNorm2dImpl>(child)) {
      norm->gain->weight.zero_();
      norm->bias->weight.zero_();
    }
}

int64_t resnet_d_features(const ModelSpec& s) {
  check_images(s);
  return s.ch * widths_for(s.sample_shape[1]).d_blocks.back();
}

GanModels resnet(const ModelSpec& s) {
  check_images(s);
  const int64_t c = s.sample_shape[0], size = s.sample_shape[1], ch = s.ch;
  const ResnetWidths w = widths_for(size);
  GanModels m;
  m.generator = nn::Sequential(LatentToGrid(s.z_dim, w.g_input * ch, w.base));
  int64_t in = w.g_input * ch;
  for (int64_t width : w.g_blocks) {
    m.generator->push_back(UpBlock(in, width * ch, s.num_classes));
    in = width * ch;
  }
  m.generator->push_back(GeneratorOutput(in, c, s.num_classes));

  m.discriminator = nn::Sequential();
  in = c;
  for (size_t i = 0; i < w.d_blocks.size(); ++i) {
    m.discriminator->push_back(DownBlock(in, w.d_blocks[i] * ch, /*downsample=*/i < w.d_downsampling, /*first=*/i == 0,
                                         s.d_spectral_norm));
    in = w.d_blocks[i] * ch;
  }
  m.discriminator->push_back(ReluSumPool());
  if (s.d_spectral_norm) m.discriminator->push_back(SNLinear(in, 1));
  else m.discriminator->push_back(nn::Linear(in, 1));
  m.discriminator->push_back(nn::Flatten(nn::FlattenOptions().start_dim(0)));  // [B, 1] -> [B]
  return m;
}

}  // namespace distgan
