#include "trainer/model/weight_first_conv.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/saved_variable.h>

#include <utility>

#include "trainer/model/autocast.h"

namespace distgan {

namespace {

namespace autograd = torch::autograd;

// What both backward nodes keep: the input and the weight as given (so that a gradient of the
// gradient reaches them), whether there is a bias, and the geometry.
struct SavedConv {
  SavedConv(const torch::Tensor& x_, const torch::Tensor& w_, bool has_bias_, const Conv2dGeometry& g)
      : x(x_, false), weight(w_, false), has_bias(has_bias_), geometry(g) {}
  autograd::SavedVariable x, weight;
  bool has_bias;
  Conv2dGeometry geometry;
  void release() {
    x.reset_data();
    weight.reset_data();
  }
  // LibTorch's backward of the convolution, the products `mask` selects (dL/dx, dL/dW, dL/db).
  std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> backward(const torch::Tensor& grad_y,
                                                                   std::array<bool, 3> mask) {
    const torch::Tensor w = weight.unpack();
    const std::vector<int64_t> bias_sizes{w.size(0)};
    const Conv2dGeometry& g = geometry;
    return at::convolution_backward(grad_y, x.unpack(), w,
                                    has_bias ? at::OptionalIntArrayRef(bias_sizes) : c10::nullopt, g.stride, g.padding,
                                    g.dilation, /*transposed=*/false, {0, 0}, g.groups, mask);
  }
};

// dL/dx, from dL/dy handed on by WeightGradient (or, when no weight needs a gradient, y's own node).
struct InputGradient : autograd::Node {
  explicit InputGradient(SavedConv saved) : s(std::move(saved)) {}
  std::string name() const override { return "distgan::Conv2dInputBackward"; }
  void release_variables() override { s.release(); }
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    autograd::variable_list out(1);
    if (grads[0].defined() && task_should_compute_output(0))
      out[0] = std::get<0>(s.backward(grads[0], {true, false, false}));
    return out;
  }
  SavedConv s;
};

// y's node: dL/dW and dL/db, then dL/dy handed on to InputGradient (its last output edge). The
// engine runs InputGradient next (it has the higher sequence number of the two, made after this).
struct WeightGradient : autograd::Node {
  explicit WeightGradient(SavedConv saved) : s(std::move(saved)) {}
  std::string name() const override { return "distgan::Conv2dWeightBackward"; }
  void release_variables() override { s.release(); }
  autograd::variable_list apply(autograd::variable_list&& grads) override {
    const torch::Tensor& grad_y = grads[0];
    autograd::variable_list out(num_outputs());
    const size_t to_input = s.has_bias ? 2 : 1;  // the edge to InputGradient, when there is one
    if (!grad_y.defined()) return out;
    const bool want_w = task_should_compute_output(0), want_b = s.has_bias && task_should_compute_output(1);
    if (want_w || want_b) {
      auto [unused, grad_w, grad_b] = s.backward(grad_y, {false, want_w, want_b});
      out[0] = grad_w;
      if (s.has_bias) out[1] = grad_b;
    }
    if (num_outputs() > to_input && task_should_compute_output(to_input)) out[to_input] = grad_y;
    return out;
  }
  SavedConv s;
};

}  // namespace

bool weight_gradient_first_applies(const torch::Tensor& input) { return input.is_cpu() && !any_autocast_enabled(); }

torch::Tensor conv2d_weight_gradient_first(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                                           const Conv2dGeometry& g) {
  torch::Tensor y;
  {
    torch::NoGradGuard no_grad;  // the graph is wired by hand below
    y = at::convolution(x, w, b.defined() ? c10::optional<at::Tensor>(b) : c10::nullopt, g.stride, g.padding,
                        g.dilation, /*transposed=*/false, {0, 0}, g.groups);
  }
  const bool weights_need = w.requires_grad() || (b.defined() && b.requires_grad());
  if (!torch::GradMode::is_enabled() || (!x.requires_grad() && !weights_need)) return y;
  std::shared_ptr<autograd::Node> head;
  if (weights_need) {
    auto weight_node =
        std::shared_ptr<WeightGradient>(new WeightGradient(SavedConv(x, w, b.defined(), g)), autograd::deleteNode);
    head = weight_node;
  }
  std::shared_ptr<InputGradient> input_node;
  if (x.requires_grad()) {
    input_node =
        std::shared_ptr<InputGradient>(new InputGradient(SavedConv(x, w, b.defined(), g)), autograd::deleteNode);
    input_node->set_next_edges(autograd::collect_next_edges(x));
  }
  if (!head) {
    autograd::set_history(y, input_node);
    return y;
  }
  autograd::edge_list edges = b.defined() ? autograd::collect_next_edges(w, b) : autograd::collect_next_edges(w);
  if (input_node) {
    input_node->add_input_metadata(y);
    edges.emplace_back(input_node, 0);
  }
  head->set_next_edges(std::move(edges));
  autograd::set_history(y, head);
  return y;
}

WeightFirstConv2dImpl::WeightFirstConv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding,
                                             bool bias)
    : torch::nn::Conv2dImpl(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(bias)),
      shape{in, out, kernel, stride, padding, bias} {
  geometry.stride = {stride, stride};
  geometry.padding = {padding, padding};
}

torch::Tensor WeightFirstConv2dImpl::forward(const torch::Tensor& input) {
  if (!weight_gradient_first_applies(input)) return torch::nn::Conv2dImpl::forward(input);
  return conv2d_weight_gradient_first(input, weight, bias, geometry);
}

std::shared_ptr<torch::nn::Module> WeightFirstConv2dImpl::clone(const c10::optional<torch::Device>& device) const {
  torch::NoGradGuard no_grad;
  auto copy = std::make_shared<WeightFirstConv2dImpl>(shape.in, shape.out, shape.kernel, shape.stride, shape.padding,
                                                      shape.bias);
  auto copy_tensors = [&](const auto& from, auto&& to) {
    for (const auto& item : from)
      to[item.key()].set_data(device ? item.value().to(*device).clone() : item.value().clone());
  };
  copy_tensors(named_parameters(/*recurse=*/false), copy->named_parameters(false));
  copy_tensors(named_buffers(/*recurse=*/false), copy->named_buffers(false));
  copy->train(is_training());
  return copy;
}

}  // namespace distgan
