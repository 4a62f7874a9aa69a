#include "trainer/model/onednn_conv_transpose.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/saved_variable.h>

#include <stdexcept>

#include "trainer/model/autocast.h"

#ifdef DISTGAN_HAVE_ONEDNN
#include <map>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <sstream>
#endif

namespace distgan {

const char* const kOnednnConvTransposeForwardName = "distgan::conv_transpose2d";
const char* const kOnednnConvTransposeBackwardName = "distgan::conv_transpose2d_backward";

#ifndef DISTGAN_HAVE_ONEDNN

bool onednn_compiled_in() { return false; }
std::string onednn_version() { return ""; }
bool onednn_conv_transpose_applies(const torch::Tensor&, const torch::Tensor&) { return false; }
torch::Tensor onednn_conv_transpose2d(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                                      const ConvTranspose2dGeometry&, bool) {
  throw std::invalid_argument("this build of distgan has no oneDNN (CMake found no libdnnl-dev 2.x)");
}

#else

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using Dims = memory::dims;

// Below this many output channels oneDNN's direct NHWC kernels lose to its GEMM-based NCHW ones
// (measured, one core: ConvTranspose2d(128, 1) 5.0 against 1.4 ms, (64, 3) 19.5 against 17.9 ms;
// every layer with 64 or more output channels was 1.3-1.7x faster in NHWC).
constexpr int64_t kMinChannelsForNhwc = 16;
// Shapes whose oneDNN kernels are kept (a training run has a handful; evaluation adds a few batch sizes).
constexpr size_t kMaxCachedShapes = 64;

// N, C_in, C_out, H, W, kH, kW, stride, padding, bias, NHWC.
using ShapeKey = std::array<int64_t, 13>;

struct Kernels {
  dnnl::deconvolution_forward::primitive_desc forward_pd;
  dnnl::deconvolution_forward forward;
  dnnl::deconvolution_backward_data::primitive_desc data_pd;
  dnnl::deconvolution_backward_data backward_data;
  dnnl::deconvolution_backward_weights::primitive_desc weights_pd;
  dnnl::deconvolution_backward_weights backward_weights;
};

struct Problem {
  Dims src, weights, dst, bias;
  Dims stride, padding;
  bool has_bias = false;
  bool nhwc = false;

  ShapeKey key() const {
    return {src[0],    src[1],    dst[1],     src[2],     src[3],   weights[2], weights[3],
            stride[0], stride[1], padding[0], padding[1], has_bias, nhwc};
  }
  std::string describe() const {
    std::ostringstream s;
    s << "transposed convolution [" << src[0] << ", " << src[1] << ", " << src[2] << ", " << src[3] << "] -> ["
      << dst[0] << ", " << dst[1] << ", " << dst[2] << ", " << dst[3] << "], kernel " << weights[2] << "x" << weights[3]
      << ", stride " << stride[0] << ", padding " << padding[0] << (nhwc ? " (NHWC)" : " (NCHW)");
    return s.str();
  }
};

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& thread_stream() {
  thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

Kernels make_kernels(const Problem& p) {
  using namespace dnnl;
  const Tag layout = p.nhwc ? Tag::nhwc : Tag::nchw;
  const memory::desc src(p.src, memory::data_type::f32, layout), dst(p.dst, memory::data_type::f32, layout);
  const memory::desc weights(p.weights, memory::data_type::f32, Tag::any);
  const memory::desc bias(p.bias, memory::data_type::f32, Tag::x);
  const auto algo = algorithm::deconvolution_direct;
  const auto forward_desc = p.has_bias ? deconvolution_forward::desc(prop_kind::forward_training, algo, src, weights,
                                                                     bias, dst, p.stride, p.padding, p.padding)
                                       : deconvolution_forward::desc(prop_kind::forward_training, algo, src, weights,
                                                                     dst, p.stride, p.padding, p.padding);
  Kernels k;
  k.forward_pd = deconvolution_forward::primitive_desc(forward_desc, cpu_engine());
  k.data_pd = deconvolution_backward_data::primitive_desc(
      deconvolution_backward_data::desc(algo, src, weights, dst, p.stride, p.padding, p.padding), cpu_engine(),
      k.forward_pd);
  const auto weights_desc =
      p.has_bias ? deconvolution_backward_weights::desc(algo, src, weights, bias, dst, p.stride, p.padding, p.padding)
                 : deconvolution_backward_weights::desc(algo, src, weights, dst, p.stride, p.padding, p.padding);
  k.weights_pd = deconvolution_backward_weights::primitive_desc(weights_desc, cpu_engine(), k.forward_pd);
  k.forward = deconvolution_forward(k.forward_pd);
  k.backward_data = deconvolution_backward_data(k.data_pd);
  k.backward_weights = deconvolution_backward_weights(k.weights_pd);
  return k;
}

// The kernels for a shape, made once (choosing and JIT-compiling them takes longer than running them).
// One cache per thread: oneDNN 2.x (OpenMP runtime, library-managed scratchpad) lets a primitive run
// only on the thread that made it. The thread count is in the key: oneDNN splits work when it makes
// a primitive.
std::shared_ptr<const Kernels> kernels_for(const Problem& p) {
  thread_local std::map<std::pair<ShapeKey, int>, std::shared_ptr<const Kernels> > cache;
  const auto key = std::make_pair(p.key(), at::get_num_threads());
  const auto found = cache.find(key);
  if (found != cache.end()) return found->second;
  if (cache.size() >= kMaxCachedShapes) cache.clear();
  auto kernels = std::make_shared<const Kernels>(make_kernels(p));
  cache.emplace(key, kernels);
  return kernels;
}

Problem problem_for(const torch::Tensor& input, const torch::Tensor& weight, bool has_bias,
                    const ConvTranspose2dGeometry& g) {
  Problem p;
  const int64_t n = input.size(0), c_in = input.size(1), h = input.size(2), w = input.size(3);
  const int64_t c_out = weight.size(1), kh = weight.size(2), kw = weight.size(3);
  const int64_t oh = (h - 1) * g.stride[0] - 2 * g.padding[0] + kh;
  const int64_t ow = (w - 1) * g.stride[1] - 2 * g.padding[1] + kw;
  p.src = {n, c_in, h, w};
  p.weights = {c_out, c_in, kh, kw};
  p.dst = {n, c_out, oh, ow};
  p.bias = {c_out};
  p.stride = {g.stride[0], g.stride[1]};
  p.padding = {g.padding[0], g.padding[1]};
  p.has_bias = has_bias;
  p.nhwc = c_out >= kMinChannelsForNhwc;
  if (oh <= 0 || ow <= 0) throw std::invalid_argument(p.describe() + ": the output would be empty");
  return p;
}

torch::MemoryFormat kernel_format(const Problem& p) {
  return p.nhwc ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
}

memory wrap(const memory::desc& desc, const torch::Tensor& t) { return memory(desc, cpu_engine(), t.data_ptr()); }

// LibTorch's weight [C_in, C_out, kH, kW] seen as oneDNN's [C_out, C_in, kH, kW], in whatever
// layout LibTorch holds it (contiguous or channels_last): the strides say where each element is.
memory weights_view(const Problem& p, const torch::Tensor& weight) {
  const Dims strides = {weight.stride(1), weight.stride(0), weight.stride(2), weight.stride(3)};
  return wrap(memory::desc(p.weights, memory::data_type::f32, strides), weight);
}

// `from` in the layout a kernel wants (a copy when it is not already in it).
memory in_layout(memory from, const memory::desc& wanted) {
  if (from.get_desc() == wanted) return from;
  memory to(wanted, cpu_engine());
  dnnl::reorder(from, to).execute(thread_stream(), from, to);
  return to;
}

[[noreturn]] void rethrow(const Problem& p, const char* pass, const dnnl::error& e) {
  throw std::runtime_error("oneDNN " + std::string(pass) + " of the " + p.describe() + " failed: " + e.what() +
                           " (cluster.conv_transpose: libtorch runs LibTorch's kernel instead)");
}

torch::Tensor forward_on_onednn(const Problem& p, const torch::Tensor& x, const torch::Tensor& weight,
                                const torch::Tensor& bias) {
  try {
    const auto k = kernels_for(p);
    torch::Tensor y =
        torch::empty({p.dst[0], p.dst[1], p.dst[2], p.dst[3]}, x.options().memory_format(kernel_format(p)));
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, wrap(k->forward_pd.src_desc(), x)},
        {DNNL_ARG_WEIGHTS, in_layout(weights_view(p, weight), k->forward_pd.weights_desc())},
        {DNNL_ARG_DST, wrap(k->forward_pd.dst_desc(), y)}};
    if (p.has_bias) args.emplace(DNNL_ARG_BIAS, wrap(k->forward_pd.bias_desc(), bias));
    k->forward.execute(thread_stream(), args);
    thread_stream().wait();
    return y;
  } catch (const dnnl::error& e) {
    rethrow(p, "forward", e);
  }
}

struct Gradients {
  torch::Tensor input, weight, bias;
};

// dL/dx, dL/dW, dL/db from dL/dy (`grad_y`, in the kernel's layout); only those asked for. `x` is
// read only for dL/dW and dL/db (then it must be in the kernel's layout); dL/dx needs its shape.
Gradients backward_on_onednn(const Problem& p, const torch::Tensor& x, const torch::Tensor& weight,
                             const torch::Tensor& grad_y, bool want_input, bool want_weight, bool want_bias) {
  Gradients g;
  try {
    const auto k = kernels_for(p);
    const memory dy = wrap(k->data_pd.diff_dst_desc(), grad_y);
    if (want_input) {
      g.input = torch::empty(x.sizes(), x.options().memory_format(kernel_format(p)));
      k->backward_data.execute(thread_stream(),
                               {{DNNL_ARG_DIFF_DST, dy},
                                {DNNL_ARG_WEIGHTS, in_layout(weights_view(p, weight), k->data_pd.weights_desc())},
                                {DNNL_ARG_DIFF_SRC, wrap(k->data_pd.diff_src_desc(), g.input)}});
    }
    if (want_weight || want_bias) {
      g.weight = torch::empty_like(weight);  // the parameter's layout, so its .grad matches it
      memory dw_user = weights_view(p, g.weight);
      const bool direct = dw_user.get_desc() == k->weights_pd.diff_weights_desc();
      memory dw = direct ? dw_user : memory(k->weights_pd.diff_weights_desc(), cpu_engine());
      std::unordered_map<int, memory> args{
          {DNNL_ARG_SRC, wrap(k->weights_pd.src_desc(), x)}, {DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_WEIGHTS, dw}};
      if (p.has_bias) {
        g.bias = torch::empty({p.bias[0]}, x.options());
        args.emplace(DNNL_ARG_DIFF_BIAS, wrap(k->weights_pd.diff_bias_desc(), g.bias));
      }
      k->backward_weights.execute(thread_stream(), args);
      if (!direct) dnnl::reorder(dw, dw_user).execute(thread_stream(), dw, dw_user);
      if (!want_weight) g.weight = torch::Tensor();
      if (!want_bias) g.bias = torch::Tensor();
    }
    thread_stream().wait();
  } catch (const dnnl::error& e) {
    rethrow(p, "backward", e);
  }
  return g;
}

// Under create_graph (a gradient penalty through G): LibTorch's op, recomputed from the saved
// tensors, so that the gradients are themselves differentiable. `want` marks x, weight, bias.
torch::autograd::variable_list libtorch_gradients(const torch::Tensor& x, const torch::Tensor& weight,
                                                  const torch::Tensor& bias, const ConvTranspose2dGeometry& g,
                                                  const torch::Tensor& grad_y, std::array<bool, 3> want) {
  const torch::Tensor y = torch::conv_transpose2d(x, weight, bias, g.stride, g.padding);
  std::vector<torch::Tensor> inputs;
  std::vector<size_t> slots;
  const std::array<torch::Tensor, 3> candidates{x, weight, bias};
  for (size_t i = 0; i < candidates.size(); ++i)
    if (want[i] && candidates[i].defined() && candidates[i].requires_grad()) {
      inputs.push_back(candidates[i]);
      slots.push_back(i);
    }
  torch::autograd::variable_list out(3);
  if (inputs.empty()) return out;
  const auto grads = torch::autograd::grad({y}, inputs, {grad_y}, /*retain_graph=*/true, /*create_graph=*/true,
                                           /*allow_unused=*/true);
  for (size_t i = 0; i < slots.size(); ++i) out[slots[i]] = grads[i];
  return out;
}

// What both backward nodes keep: the input as given (so that a gradient of the gradient reaches
// it), the weight, the bias, the geometry and the input's memory format (dL/dx comes back in it).
struct SavedConvTranspose {
  SavedConvTranspose(const torch::Tensor& x_, const torch::Tensor& w_, const torch::Tensor& b_,
                     const ConvTranspose2dGeometry& g, torch::MemoryFormat f)
      : x(x_, false), weight(w_, false), bias(b_, false), has_bias(b_.defined()), geometry(g), format(f) {}
  torch::autograd::SavedVariable x, weight, bias;
  bool has_bias;
  ConvTranspose2dGeometry geometry;
  torch::MemoryFormat format;
  void release() {
    x.reset_data();
    weight.reset_data();
    bias.reset_data();
  }
};

// A transposed convolution's backward is two products: dL/dx, which the layers before it wait
// for, and dL/dW (with dL/db), which nothing in the backward pass waits for. They run in two nodes.
// LibTorch's engine runs the ready node with the highest sequence number first. WeightGradient
// normally gets the next number, made just before InputGradient's, so it runs right after it, as
// one node would. With `last` it gets 0 and runs after every other node that is ready: the layers
// before it backpropagate first, and their gradients (G's first layer in DCGAN-28: two thirds of
// G's bytes) can start their all-reduce while the weight gradient computes
// (trainer/step/replica_sync.cpp puts these weights in the last buckets).
struct WeightGradient : torch::autograd::Node {
  WeightGradient(SavedConvTranspose saved, bool last)
      : Node(last ? 0 : at::sequence_number::get_and_increment()), s(std::move(saved)) {}
  std::string name() const override { return "distgan::ConvTranspose2dWeightBackward"; }
  void release_variables() override { s.release(); }

  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
    const torch::Tensor& grad_y = grads[0];
    torch::autograd::variable_list out(num_outputs());
    const bool want_w = task_should_compute_output(0), want_b = s.has_bias && task_should_compute_output(1);
    if (!grad_y.defined() || (!want_w && !want_b)) return out;
    const torch::Tensor x = s.x.unpack(), w = s.weight.unpack(), b = s.bias.unpack();
    if (torch::GradMode::is_enabled()) {
      const auto g = libtorch_gradients(x, w, b, s.geometry, grad_y, {false, want_w, want_b});
      out[0] = g[1];
      if (s.has_bias) out[1] = g[2];
      return out;
    }
    const Problem p = problem_for(x, w, s.has_bias, s.geometry);
    RECORD_FUNCTION(kOnednnConvTransposeBackwardName, std::vector<c10::IValue>({grad_y, x, w, int64_t{want_w}}));
    Gradients g = backward_on_onednn(p, x.contiguous(kernel_format(p)), w, grad_y.contiguous(kernel_format(p)), false,
                                     want_w, want_b);
    out[0] = g.weight;
    if (s.has_bias) out[1] = g.bias;
    return out;
  }

  SavedConvTranspose s;
};

// dL/dx, and dL/dy handed on to the WeightGradient node (its second output edge), already in the
// kernel's layout, so the layout copy is made once for both.
struct InputGradient : torch::autograd::Node {
  explicit InputGradient(SavedConvTranspose saved) : s(std::move(saved)) {}
  std::string name() const override { return "distgan::ConvTranspose2dBackward"; }
  void release_variables() override { s.release(); }

  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
    const torch::Tensor& grad_y = grads[0];
    torch::autograd::variable_list out(num_outputs());
    const bool to_weights = num_outputs() > 1 && task_should_compute_output(1), want_x = task_should_compute_output(0);
    if (!grad_y.defined() || (!to_weights && !want_x)) return out;
    const torch::Tensor x = s.x.unpack(), w = s.weight.unpack();
    if (torch::GradMode::is_enabled()) {
      if (to_weights) out[1] = grad_y;
      if (want_x) out[0] = libtorch_gradients(x, w, s.bias.unpack(), s.geometry, grad_y, {true, false, false})[0];
    } else {
      const Problem p = problem_for(x, w, s.has_bias, s.geometry);
      const torch::Tensor dy = grad_y.contiguous(kernel_format(p));
      if (to_weights) out[1] = dy;
      if (want_x) {
        RECORD_FUNCTION(kOnednnConvTransposeBackwardName, std::vector<c10::IValue>({grad_y, x, w, int64_t{1}}));
        out[0] = backward_on_onednn(p, x, w, dy, true, false, false).input;
      }
    }
    if (out[0].defined()) out[0] = out[0].contiguous(s.format);
    return out;
  }

  SavedConvTranspose s;
};

// The forward on oneDNN, then (when anything needs a gradient) the two backward nodes wired in:
// y's grad_fn is InputGradient, whose edges lead to x's and to WeightGradient, whose edges lead to
// the weight and the bias.
torch::Tensor conv_transpose_on_onednn(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                                       const ConvTranspose2dGeometry& geometry, bool weight_gradient_last) {
  // Seen by profilers and by the FlopCounter (trainer/run/flop_counter.cpp), as LibTorch's ops are.
  RECORD_FUNCTION(kOnednnConvTransposeForwardName, std::vector<c10::IValue>({x, w}));
  const Problem p = problem_for(x, w, b.defined(), geometry);
  const torch::MemoryFormat format = x.suggest_memory_format();
  torch::Tensor y;
  {
    torch::NoGradGuard no_grad;  // the graph is wired by hand below
    y = forward_on_onednn(p, x.contiguous(kernel_format(p)), w, b.defined() ? b : torch::Tensor()).contiguous(format);
  }
  const bool weights_need = w.requires_grad() || (b.defined() && b.requires_grad());
  if (!torch::GradMode::is_enabled() || (!x.requires_grad() && !weights_need)) return y;
  torch::autograd::edge_list edges = torch::autograd::collect_next_edges(x);
  if (weights_need) {
    auto weight_node = std::shared_ptr<WeightGradient>(
        new WeightGradient(SavedConvTranspose(x, w, b, geometry, format), weight_gradient_last),
        torch::autograd::deleteNode);
    weight_node->set_next_edges(b.defined() ? torch::autograd::collect_next_edges(w, b)
                                            : torch::autograd::collect_next_edges(w));
    weight_node->add_input_metadata(y);
    edges.emplace_back(std::move(weight_node), 0);
  }
  auto input_node = std::shared_ptr<InputGradient>(new InputGradient(SavedConvTranspose(x, w, b, geometry, format)),
                                                   torch::autograd::deleteNode);
  input_node->set_next_edges(std::move(edges));
  torch::autograd::set_history(y, input_node);
  return y;
}

// Under CPU autocast LibTorch 1.13 runs conv_transpose2d in float32 (its autocast "fp32" list: bf16
// inputs are cast up), so the float32 kernel here is what LibTorch would run, after the same cast.
// LibTorch 2.x autocasts it to bf16 instead: its own op then.
bool autocast_runs_in_float32() {
#if TORCH_VERSION_MAJOR >= 2
  return false;
#else
  return cpu_autocast_enabled();
#endif
}
bool autocast_runs_in_bf16() {
#if TORCH_VERSION_MAJOR >= 2
  return cpu_autocast_enabled();
#else
  return false;
#endif
}

bool float_type_taken(torch::ScalarType t) {
  return t == torch::kFloat || (t == torch::kBFloat16 && autocast_runs_in_float32());
}

}  // namespace

bool onednn_compiled_in() { return true; }

std::string onednn_version() {
  const dnnl_version_t* v = dnnl::version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

bool onednn_conv_transpose_applies(const torch::Tensor& input, const torch::Tensor& weight) {
  return input.defined() && weight.defined() && input.dim() == 4 && weight.dim() == 4 && input.size(0) > 0 &&
         input.numel() > 0 && input.device().is_cpu() && weight.device().is_cpu() &&
         float_type_taken(input.scalar_type()) && float_type_taken(weight.scalar_type()) &&
         input.layout() == torch::kStrided && weight.layout() == torch::kStrided && !autocast_runs_in_bf16();
}

torch::Tensor onednn_conv_transpose2d(const torch::Tensor& input, const torch::Tensor& weight,
                                      const torch::Tensor& bias, const ConvTranspose2dGeometry& geometry,
                                      bool weight_gradient_last) {
  if (!onednn_conv_transpose_applies(input, weight))
    throw std::invalid_argument(
        "onednn_conv_transpose2d takes non-empty 4-D float32 CPU tensors outside autocast; got "
        "an input of " +
        std::string(c10::toString(input.scalar_type())) + " on " + input.device().str() + " with " +
        std::to_string(input.dim()) + " dimensions");
  if (input.size(1) != weight.size(0))
    throw std::invalid_argument("onednn_conv_transpose2d: the input has " + std::to_string(input.size(1)) +
                                " channels and the weight expects " + std::to_string(weight.size(0)));
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != weight.size(1) || !float_type_taken(bias.scalar_type()) ||
                         !bias.device().is_cpu()))
    throw std::invalid_argument("onednn_conv_transpose2d: the bias must be float32 [" + std::to_string(weight.size(1)) +
                                "] on the CPU");
  // Autocast's cast to float32 (differentiable; nothing to do outside autocast).
  const torch::Tensor x = input.to(torch::kFloat), w32 = weight.to(torch::kFloat);
  const torch::Tensor w = w32.is_non_overlapping_and_dense() ? w32 : w32.contiguous();
  const torch::Tensor b = bias.defined() ? bias.to(torch::kFloat).contiguous() : torch::Tensor();
  return conv_transpose_on_onednn(x, w, b, geometry, weight_gradient_last);
}

#endif

}  // namespace distgan
