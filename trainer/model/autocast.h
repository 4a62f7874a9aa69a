// bf16 autocast of forward passes (training.amp: bf16): inside a BF16Autocast scope, LibTorch runs
// matrix products and convolutions in bfloat16 and keeps reductions and losses in float32, as
// torch.autocast does, on CUDA or on the CPU (where the processor's native bf16 instructions,
// AVX512-BF16 or AMX, make it pay). The C++ switch changed in LibTorch 2.4 (per device type); this
// hides the difference.
#pragma once

#include <ATen/autocast_mode.h>
#include <c10/core/DeviceType.h>
#include <torch/version.h>

namespace distgan {

// Whether CPU autocast is on in this thread (inside a BF16Autocast scope on the CPU, or torch's own).
inline bool cpu_autocast_enabled() {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  return at::autocast::is_autocast_enabled(at::kCPU);
#else
  return at::autocast::is_cpu_enabled();
#endif
}

// Whether autocast is on in this thread for the CPU or for CUDA.
inline bool any_autocast_enabled() {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  return at::autocast::is_autocast_enabled(at::kCPU) || at::autocast::is_autocast_enabled(at::kCUDA);
#else
  return at::autocast::is_cpu_enabled() || at::autocast::is_enabled();
#endif
}

class BF16Autocast {
 public:
  BF16Autocast(bool enabled, c10::DeviceType device) : enabled_(enabled), cpu_(device == c10::DeviceType::CPU) {
    if (!enabled_) return;
    previous_ = is_on();
    set_dtype_bf16();
    set_on(true);
    at::autocast::increment_nesting();
  }
  ~BF16Autocast() {
    if (!enabled_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();  // casts of weights
    set_on(previous_);
  }
  BF16Autocast(const BF16Autocast&) = delete;
  BF16Autocast& operator=(const BF16Autocast&) = delete;

 private:
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::DeviceType type() const { return cpu_ ? at::kCPU : at::kCUDA; }
  bool is_on() const { return at::autocast::is_autocast_enabled(type()); }
  void set_on(bool on) const { at::autocast::set_autocast_enabled(type(), on); }
  void set_dtype_bf16() const { at::autocast::set_autocast_dtype(type(), at::kBFloat16); }
#else
  bool is_on() const { return cpu_ ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled(); }
  void set_on(bool on) const { cpu_ ? at::autocast::set_cpu_enabled(on) : at::autocast::set_enabled(on); }
  void set_dtype_bf16() const {
    cpu_ ? at::autocast::set_autocast_cpu_dtype(at::kBFloat16) : at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
  }
#endif

  bool enabled_;
  bool cpu_;
  bool previous_ = false;
};

}  // namespace distgan
