// Counts the floating-point operations of the convolutions and matrix products LibTorch runs on
// this thread (and the autograd threads it starts) while a FlopCounter is alive, forward and
// backward: 2 per multiply-add, from each operator's input shapes (ATen's RecordFunction
// observers). Elementwise work (activations, normalisation, the optimizer) is not counted: it is
// a few percent of a convolutional GAN's arithmetic. The training loop counts one step this way (its
// process's second) and logs the achieved GFLOP/s per rank.
#pragma once

#include <ATen/record_function.h>

#include <cstdint>

namespace distgan {

class FlopCounter {
 public:
  FlopCounter();
  ~FlopCounter();
  FlopCounter(const FlopCounter&) = delete;
  FlopCounter& operator=(const FlopCounter&) = delete;
  // Operations counted so far (by every live counter: keep one at a time).
  double flops() const;

 private:
  at::CallbackHandle handle_;
};

}  // namespace distgan
