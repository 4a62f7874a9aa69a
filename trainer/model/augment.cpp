#include "trainer/model/augment.h"

#include "trainer/model/host_to_device.h"

#include <sstream>
#include <stdexcept>

namespace distgan {

namespace {

using torch::indexing::Slice;

// Per-sample integer shifts applied by gathering from a zero-padded copy (out-of-range reads hit
// the padding), as DiffAugment's translation.
torch::Tensor translate(const torch::Tensor& x, const torch::Tensor& shift_y, const torch::Tensor& shift_x) {
  const int64_t b = x.size(0), h = x.size(2), w = x.size(3);
  const auto opts = torch::TensorOptions().dtype(torch::kInt64).device(x.device());
  const torch::Tensor rows = (torch::arange(h, opts).view({1, h, 1}) + shift_y.view({b, 1, 1}) + 1).clamp(0, h + 1);
  const torch::Tensor cols = (torch::arange(w, opts).view({1, 1, w}) + shift_x.view({b, 1, 1}) + 1).clamp(0, w + 1);
  const torch::Tensor padded = torch::constant_pad_nd(x, {1, 1, 1, 1}).permute({0, 2, 3, 1});  // [B, H+2, W+2, C]
  const torch::Tensor batch = torch::arange(b, opts).view({b, 1, 1});
  return padded.index({batch, rows, cols}).permute({0, 3, 1, 2});
}

torch::Tensor cut_out(const torch::Tensor& x, const torch::Tensor& centre_y, const torch::Tensor& centre_x) {
  const int64_t b = x.size(0), h = x.size(2), w = x.size(3);
  const int64_t size_y = h / 2, size_x = w / 2;
  const auto opts = torch::TensorOptions().dtype(torch::kInt64).device(x.device());
  const torch::Tensor y = torch::arange(h, opts).view({1, h, 1}) - (centre_y.view({b, 1, 1}) - size_y / 2);
  const torch::Tensor xx = torch::arange(w, opts).view({1, 1, w}) - (centre_x.view({b, 1, 1}) - size_x / 2);
  const torch::Tensor inside = (y >= 0) & (y < size_y) & (xx >= 0) & (xx < size_x);  // [B, H, W]
  return x * (~inside).unsqueeze(1).to(x.scalar_type());
}

}  // namespace

AugmentPolicy parse_augment_policy(const std::string& text) {
  AugmentPolicy p;
  if (text == "none" || text.empty()) return p;
  std::stringstream parts(text);
  for (std::string part; std::getline(parts, part, ',');) {
    part.erase(0, part.find_first_not_of(' '));
    part.erase(part.find_last_not_of(' ') + 1);
    if (part == "translation") p.translation = true;
    else if (part == "color") p.color = true;
    else if (part == "cutout") p.cutout = true;
    else throw std::invalid_argument("training.augment: unknown transform '" + part +
                                     "' (expected none, or a comma-separated list of translation, color, cutout)");
  }
  return p;
}

AugmentDraw draw_augment(const AugmentPolicy& p, int64_t b, int64_t h, int64_t w, torch::Generator& gen,
                         const torch::Device& device) {
  AugmentDraw d;
  const auto to = [&](const torch::Tensor& t) { return host_to_device(t, device); };
  if (p.color) {
    d.brightness = to(torch::rand({b, 1, 1, 1}, gen) - 0.5);
    d.saturation = to(torch::rand({b, 1, 1, 1}, gen) * 2);
    d.contrast = to(torch::rand({b, 1, 1, 1}, gen) + 0.5);
  }
  if (p.translation) {
    const int64_t sy = h / 8, sx = w / 8;
    d.shift_y = to(torch::randint(-sy, sy + 1, {b}, gen, torch::kInt64));
    d.shift_x = to(torch::randint(-sx, sx + 1, {b}, gen, torch::kInt64));
  }
  if (p.cutout) {
    d.cutout_y = to(torch::randint(0, h + (1 - (h / 2) % 2), {b}, gen, torch::kInt64));
    d.cutout_x = to(torch::randint(0, w + (1 - (w / 2) % 2), {b}, gen, torch::kInt64));
  }
  return d;
}

torch::Tensor augment(const torch::Tensor& images, const AugmentDraw& d) {
  torch::Tensor x = images;
  if (d.brightness.defined()) {
    // DiffAugment works on images in [-1, 1] too: brightness shifts, the others scale about a mean.
    x = x + d.brightness.to(x.scalar_type());
    const torch::Tensor channel_mean = x.mean(1, /*keepdim=*/true);
    x = (x - channel_mean) * d.saturation.to(x.scalar_type()) + channel_mean;
    const torch::Tensor image_mean = x.mean({1, 2, 3}, /*keepdim=*/true);
    x = (x - image_mean) * d.contrast.to(x.scalar_type()) + image_mean;
  }
  if (d.shift_y.defined()) x = translate(x, d.shift_y, d.shift_x);
  if (d.cutout_y.defined()) x = cut_out(x, d.cutout_y, d.cutout_x);
  return x;
}

}  // namespace distgan
