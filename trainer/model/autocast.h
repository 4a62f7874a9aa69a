// bf16 autocast of forward passes on CUDA (training.amp: bf16): inside a BF16Autocast scope,
// LibTorch runs matrix products and convolutions in bfloat16 and keeps reductions and losses in
// float32, as torch.autocast does. The C++ switch changed in LibTorch 2.4 (per device type); this
// hides the difference.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace distgan {

class BF16Autocast {
 public:
  explicit BF16Autocast(bool enabled) : enabled_(enabled) {
    if (!enabled_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    previous_ = at::autocast::is_autocast_enabled(at::kCUDA);
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
    previous_ = at::autocast::is_enabled();
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
#endif
    at::autocast::increment_nesting();
  }
  ~BF16Autocast() {
    if (!enabled_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();  // casts of weights
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(at::kCUDA, previous_);
#else
    at::autocast::set_enabled(previous_);
#endif
  }
  BF16Autocast(const BF16Autocast&) = delete;
  BF16Autocast& operator=(const BF16Autocast&) = delete;

 private:
  bool enabled_;
  bool previous_ = false;
};

}  // namespace distgan
