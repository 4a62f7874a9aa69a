// `distgan sample`: generates items with a trained generator and writes them to HDF5 (the same
// layout as `distgan prep`: /images uint8 [N,C,H,W] or /samples float32 [N,D]) and/or a PNG grid.
#include <ATen/CPUGeneratorImpl.h>

#include <cstdio>

#include "data/dataset_writer.h"
#include "launcher/commands.h"
#include "trainer/model_file.h"
#include "trainer/png_image.h"

namespace distgan::launcher {

namespace {

constexpr int64_t kBatch = 256;  // generated per forward pass

struct SampleOptions {
  std::string checkpoint, out, grid;
  int64_t count = 64;
  uint64_t seed = 0;
  bool force = false;
};

}  // namespace

Runner add_sample_command(CLI::App& app) {
  auto o = std::make_shared<SampleOptions>();
  auto* cmd = app.add_subcommand("sample", "generate samples with a trained generator");
  cmd->add_option("-k,--checkpoint", o->checkpoint, "model file (final.h5 in a run directory)")
      ->required()->check(CLI::ExistingFile);
  cmd->add_option("-n,--count", o->count, "number of items")->check(CLI::Range(int64_t{1}, int64_t{1} << 26))
      ->capture_default_str();
  cmd->add_option("-o,--out", o->out, "HDF5 file to write the items to");
  cmd->add_option("--grid", o->grid, "PNG file: a grid of the items (images) or a scatter plot (2-D vectors)");
  cmd->add_option("--seed", o->seed, "noise seed")->capture_default_str();
  cmd->add_flag("-f,--force", o->force, "replace the output file if it exists");

  return [o]() -> int {
    if (o->out.empty() && o->grid.empty()) throw CLI::ValidationError("give --out FILE.h5 and/or --grid FILE.png");
    LoadedModels loaded = load_model_file(o->checkpoint);
    auto& g = loaded.models.generator;
    g->eval();
    torch::NoGradGuard no_grad;
    at::Generator noise = at::detail::createCPUGenerator(o->seed);
    std::vector<torch::Tensor> parts;
    for (int64_t done = 0; done < o->count; done += kBatch) {
      const int64_t n = std::min(kBatch, o->count - done);
      parts.push_back(g->forward(torch::randn({n, loaded.spec.z_dim}, noise)));
    }
    const torch::Tensor items = torch::cat(parts).contiguous();
    if (!torch::isfinite(items).all().item<bool>())
      std::fprintf(stderr, "distgan: warning: the generator produced non-finite values (a diverged model?)\n");
    const bool images = loaded.spec.sample_shape.size() == 3;
    if (!o->out.empty()) {
      data::DatasetContents c;
      c.shape = items.sizes().vec();
      if (images) {
        c.name = "/images";
        const torch::Tensor bytes =
            ((torch::nan_to_num(items, 0.0) + 1) * 127.5).round().clamp(0, 255).to(torch::kUInt8).contiguous();
        c.u8.assign(bytes.data_ptr<uint8_t>(), bytes.data_ptr<uint8_t>() + bytes.numel());
      } else {
        c.name = "/samples";
        c.f32.assign(items.data_ptr<float>(), items.data_ptr<float>() + items.numel());
      }
      c.attributes = {{"source", "distgan sample"}, {"checkpoint", o->checkpoint},
                      {"step", std::to_string(loaded.step)}, {"seed", std::to_string(o->seed)}};
      data::WriteOptions w;
      w.overwrite = o->force;
      data::write_dataset_file(o->out, c, w);
      std::printf("wrote %lld items to %s (%s)\n", static_cast<long long>(o->count), o->out.c_str(), c.name.c_str());
    }
    if (!o->grid.empty()) {
      if (images) {
        write_png(o->grid, image_grid(items.narrow(0, 0, std::min<int64_t>(items.size(0), 256)), 16));
      } else if (items.size(1) >= 2) {
        write_png(o->grid, scatter_plot(items, items));
      } else {
        throw std::invalid_argument("--grid: the generator makes vectors of size " +
                                    std::to_string(items.size(1)) + "; a plot needs at least 2");
      }
      std::printf("wrote %s\n", o->grid.c_str());
    }
    return kExitOk;
  };
}

}  // namespace distgan::launcher
