// Argument checks shared by the metric functions: every metric takes feature sets as [N, F]
// tensors of any floating type on any device and computes in float64 on that device.
#pragma once

#include <torch/torch.h>

#include <stdexcept>
#include <string>

namespace distgan::eval::detail {

inline std::string shape_text(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? "," : "") + std::to_string(t.size(i));
  return s + "]";
}

// `t` as a float64 [N, F] matrix with N >= min_rows and F >= 1; throws std::invalid_argument
// naming the metric and the argument otherwise.
inline torch::Tensor float64_rows(const torch::Tensor& t, const std::string& metric, const std::string& name,
                                  int64_t min_rows) {
  const std::string where = metric + ": " + name;
  if (!t.defined()) throw std::invalid_argument(where + " is an undefined tensor");
  if (t.dim() != 2 || t.size(1) < 1)
    throw std::invalid_argument(where + " must be a [N, F] matrix with F >= 1, got " + shape_text(t));
  if (t.size(0) < min_rows)
    throw std::invalid_argument(where + " needs at least " + std::to_string(min_rows) + " rows, got " +
                                std::to_string(t.size(0)));
  if (!t.is_floating_point()) throw std::invalid_argument(where + " must be a floating-point tensor");
  return t.to(torch::kFloat64).contiguous();
}

// Both sets must have the same feature dimension.
inline void require_same_width(const torch::Tensor& a, const torch::Tensor& b, const std::string& metric) {
  if (a.size(1) != b.size(1))
    throw std::invalid_argument(metric + ": the two sets have different feature dimensions " + shape_text(a) + " and " +
                                shape_text(b));
}

}  // namespace distgan::eval::detail
