// Transposed convolutions, LibTorch's op against distgan's oneDNN one (cluster.conv_transpose):
// forward and backward (dL/dx and dL/dW) of DCGAN's layers at batch 64 on one thread, median of
// --repeats runs each, both kernels in turn, in the layouts the caller holds (contiguous and
// channels_last). Prints a table and, with --json FILE, writes it as JSON.
//   distgan_bench_conv_transpose [--repeats 7] [--batch 64] [--threads 1] [--json FILE]
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>

#include "trainer/model/onednn_conv_transpose.h"

namespace {

struct Layer {
  const char* model;
  int64_t in, out, size;
  bool bias;
};

// DCGAN-28's and DCGAN-64's transposed convolutions after the first (ch 64): kernel 4, stride 2, padding 1.
const Layer kLayers[] = {{"dcgan28", 256, 128, 7, false}, {"dcgan28", 128, 1, 14, true},
                         {"dcgan64", 512, 256, 4, false}, {"dcgan64", 256, 128, 8, false},
                         {"dcgan64", 128, 64, 16, false}, {"dcgan64", 64, 3, 32, true}};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One forward and backward; seconds.
double pass(const Layer& l, int64_t batch, torch::MemoryFormat format, bool onednn) {
  const torch::Tensor x = torch::randn({batch, l.in, l.size, l.size}).contiguous(format).requires_grad_(true);
  const torch::Tensor w = (0.02 * torch::randn({l.in, l.out, 4, 4})).contiguous(format).requires_grad_(true);
  const torch::Tensor b = l.bias ? torch::zeros({l.out}).requires_grad_(true) : torch::Tensor();
  const torch::Tensor dy = torch::randn({batch, l.out, 2 * l.size, 2 * l.size}).contiguous(format);
  distgan::ConvTranspose2dGeometry g;
  g.stride = {2, 2};
  g.padding = {1, 1};
  const auto t0 = std::chrono::steady_clock::now();
  const torch::Tensor y = onednn ? distgan::onednn_conv_transpose2d(x, w, b, g)
                                 : torch::conv_transpose2d(x, w, b, g.stride, g.padding);
  y.backward(dy);
  return seconds_since(t0);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"transposed convolutions: LibTorch's op against distgan's oneDNN one", "distgan_bench_conv_transpose"};
  int repeats = 7, threads = 1;
  int64_t batch = 64;
  std::string json_path;
  app.add_option("--repeats", repeats, "timed runs per kernel and layer (the median is shown)")->check(CLI::Range(1, 1000));
  app.add_option("--batch", batch, "batch size")->check(CLI::Range(1, 4096));
  app.add_option("--threads", threads, "compute threads")->check(CLI::Range(1, 1024));
  app.add_option("--json", json_path, "also write the table here as JSON");
  CLI11_PARSE(app, argc, argv);
  if (!distgan::onednn_compiled_in()) {
    std::fprintf(stderr, "distgan_bench_conv_transpose: this build has no oneDNN (DISTGAN_WITH_ONEDNN)\n");
    return 1;
  }
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  std::printf("oneDNN %s, LibTorch %s, batch %lld, %d thread(s), median of %d; forward and backward, ms\n",
              distgan::onednn_version().c_str(), TORCH_VERSION, static_cast<long long>(batch), threads, repeats);
  std::printf("%-8s %-22s %-8s %10s %10s %8s\n", "model", "layer", "layout", "LibTorch", "oneDNN", "speedup");
  nlohmann::json rows = nlohmann::json::array();
  for (const Layer& l : kLayers)
    for (const auto format : {torch::MemoryFormat::Contiguous, torch::MemoryFormat::ChannelsLast}) {
      pass(l, batch, format, false);  // warm-up: allocations, oneDNN's JIT
      pass(l, batch, format, true);
      std::vector<double> libtorch, onednn;
      for (int r = 0; r < repeats; ++r) {  // alternating, so drifts in the machine's speed hit both
        libtorch.push_back(pass(l, batch, format, false));
        onednn.push_back(pass(l, batch, format, true));
      }
      const double a = median(libtorch) * 1e3, b = median(onednn) * 1e3;
      const std::string name = "ConvT(" + std::to_string(l.in) + ", " + std::to_string(l.out) + ") on " +
                               std::to_string(l.size) + "x" + std::to_string(l.size);
      const char* layout = format == torch::MemoryFormat::ChannelsLast ? "NHWC" : "NCHW";
      std::printf("%-8s %-22s %-8s %10.2f %10.2f %7.2fx\n", l.model, name.c_str(), layout, a, b, a / b);
      rows.push_back({{"model", l.model}, {"layer", name}, {"layout", layout}, {"libtorch_ms", a}, {"onednn_ms", b}});
    }
  if (!json_path.empty()) std::ofstream(json_path) << rows.dump(2) << "\n";
  return 0;
}
