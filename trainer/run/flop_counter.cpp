#include "trainer/run/flop_counter.h"

#include "trainer/model/onednn_conv_transpose.h"

#include <atomic>
#include <cstring>
#include <vector>

namespace distgan {

namespace {

std::atomic<double> g_flops{0};

std::vector<int64_t> sizes_of(const c10::IValue& v) {
  return v.isTensor() ? v.toTensor().sizes().vec() : std::vector<int64_t>{};
}

double numel(const std::vector<int64_t>& shape) {
  double n = 1;
  for (int64_t d : shape) n *= static_cast<double>(d);
  return shape.empty() ? 0 : n;
}

// A convolution's multiply-adds x 2, from its input, weight and (for a normal one) output shapes:
// every output element of a normal convolution takes Cin/groups x kh x kw products; every input
// element of a transposed one feeds Cout/groups x kh x kw.
double convolution_flops(const std::vector<int64_t>& input, const std::vector<int64_t>& weight,
                         const std::vector<int64_t>& output, bool transposed) {
  if (weight.size() < 3 || weight[0] == 0) return 0;
  const double per_weight_row = numel(weight) / static_cast<double>(weight[0]);
  return 2 * (transposed ? numel(input) : numel(output)) * per_weight_row;
}

// The output shape of a normal convolution: N, Cout, then each spatial size.
std::vector<int64_t> convolution_output(const std::vector<int64_t>& input, const std::vector<int64_t>& weight,
                                        const c10::IValue& stride, const c10::IValue& padding,
                                        const c10::IValue& dilation) {
  std::vector<int64_t> out{input[0], weight[0]};
  const auto s = stride.toIntVector(), p = padding.toIntVector(), d = dilation.toIntVector();
  for (size_t i = 2; i < input.size() && i < weight.size(); ++i) {
    const size_t k = i - 2;
    const int64_t si = s.size() > k ? s[k] : s.at(0), pi = p.size() > k ? p[k] : p.at(0),
                  di = d.size() > k ? d[k] : d.at(0);
    out.push_back((input[i] + 2 * pi - di * (weight[i] - 1) - 1) / si + 1);
  }
  return out;
}

double matmul_flops(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  if (a.size() < 2 || b.size() < 2) return 0;
  return 2 * numel(a) * static_cast<double>(b.back());  // [.., M, K] x [.., K, N]
}

double op_flops(const at::RecordFunction& fn) {
  const char* name = fn.name();
  const auto in = fn.inputs();
  if (std::strcmp(name, "aten::convolution") == 0 && in.size() >= 7) {
    const auto input = sizes_of(in[0]), weight = sizes_of(in[1]);
    const bool transposed = in[6].toBool();
    if (input.size() < 3) return 0;
    return convolution_flops(input, weight, transposed ? input : convolution_output(input, weight, in[3], in[4], in[5]),
                             transposed);
  }
  if (std::strcmp(name, "aten::convolution_backward") == 0 && in.size() >= 11) {
    // (grad_output, input, weight, ...): the forward's work once per gradient asked for.
    const auto grad_output = sizes_of(in[0]), input = sizes_of(in[1]), weight = sizes_of(in[2]);
    const bool transposed = in[7].toBool();
    const auto mask = in[10].toBoolList();
    const double passes = (mask.get(0) ? 1 : 0) + (mask.get(1) ? 1 : 0);
    return passes * convolution_flops(input, weight, grad_output, transposed);
  }
  // distgan's own transposed convolution on oneDNN (trainer/model/onednn_conv_transpose.h).
  if (std::strcmp(name, kOnednnConvTransposeForwardName) == 0 && in.size() >= 2)
    return convolution_flops(sizes_of(in[0]), sizes_of(in[1]), {}, /*transposed=*/true);
  if (std::strcmp(name, kOnednnConvTransposeBackwardName) == 0 && in.size() >= 4)
    return static_cast<double>(in[3].toInt()) * convolution_flops(sizes_of(in[1]), sizes_of(in[2]), {}, true);
  if ((std::strcmp(name, "aten::mm") == 0 || std::strcmp(name, "aten::bmm") == 0) && in.size() >= 2)
    return matmul_flops(sizes_of(in[0]), sizes_of(in[1]));
  if (std::strcmp(name, "aten::addmm") == 0 && in.size() >= 3) return matmul_flops(sizes_of(in[1]), sizes_of(in[2]));
  return 0;
}

std::unique_ptr<at::ObserverContext> on_op_start(const at::RecordFunction& fn) {
  const double f = op_flops(fn);
  if (f > 0) {
    double seen = g_flops.load();
    while (!g_flops.compare_exchange_weak(seen, seen + f)) {
    }
  }
  return nullptr;
}

}  // namespace

FlopCounter::FlopCounter() {
  g_flops = 0;
  handle_ = at::addThreadLocalCallback(
      at::RecordFunctionCallback(&on_op_start).needsInputs(true).scopes({at::RecordScope::FUNCTION}));
}

FlopCounter::~FlopCounter() { at::removeCallback(handle_); }

double FlopCounter::flops() const { return g_flops.load(); }

}  // namespace distgan
