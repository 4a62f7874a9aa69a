// Values drawn on the host from a checkpointed generator (noise, labels, augmentation parameters),
// moved to the rank's device without holding up the host.
#pragma once

#include <torch/torch.h>

namespace distgan {

// `host` on `device`. A copy to a GPU from pageable memory makes the host wait until the copy is
// done, so the host could not run ahead of the GPU by a step: the values go through pinned memory
// (LibTorch's caching host allocator, which keeps the buffer until the copy on the stream has been
// carried out) and are copied asynchronously. On the CPU, `host` itself.
inline torch::Tensor host_to_device(const torch::Tensor& host, const torch::Device& device) {
  if (device.is_cpu()) return host;
  return host.pin_memory().to(device, /*non_blocking=*/true);
}

}  // namespace distgan
