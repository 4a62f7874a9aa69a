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
  cmd->add_option("-n,--count", o->count, "number of items")->check(CLI::Range(int64_t{1}, int64_t{1} << 24))
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
    // Batch by batch, each converted to its stored form at once: memory is the output's size
    // (uint8 for images), not a float copy of everything.
    const bool images = loaded.spec.sample_shape.size() == 3;
    const int64_t shown_limit = images ? 256 : 2500;  // a 16x16 grid; the scatter plot's points
    data::DatasetContents c;
    std::vector<torch::Tensor> shown_parts;  // the first items, for --grid
    int64_t shown_count = 0;
    bool finite = true;
    for (int64_t done = 0; done < o->count; done += kBatch) {
      const int64_t n = std::min(kBatch, o->count - done);
      const torch::Tensor items = g->forward(torch::randn({n, loaded.spec.z_dim}, noise)).contiguous();
      finite = finite && torch::isfinite(items).all().item<bool>();
      if (shown_count < shown_limit) {
        shown_parts.push_back(items.narrow(0, 0, std::min(n, shown_limit - shown_count)));
        shown_count += shown_parts.back().size(0);
      }
      if (o->out.empty() && shown_count >= shown_limit) break;  // only the grid is wanted
      if (images) {
        const torch::Tensor bytes =
            ((torch::nan_to_num(items, 0.0) + 1) * 127.5).round().clamp(0, 255).to(torch::kUInt8).contiguous();
        c.u8.insert(c.u8.end(), bytes.data_ptr<uint8_t>(), bytes.data_ptr<uint8_t>() + bytes.numel());
      } else {
        c.f32.insert(c.f32.end(), items.data_ptr<float>(), items.data_ptr<float>() + items.numel());
      }
    }
    if (!finite) std::fprintf(stderr, "distgan: warning: the generator produced non-finite values (a diverged model?)\n");
    if (!o->out.empty()) {
      c.name = images ? "/images" : "/samples";
      c.shape = {o->count};
      c.shape.insert(c.shape.end(), loaded.spec.sample_shape.begin(), loaded.spec.sample_shape.end());
      c.attributes = {{"source", "distgan sample"}, {"checkpoint", o->checkpoint},
                      {"step", std::to_string(loaded.step)}, {"seed", std::to_string(o->seed)}};
      data::WriteOptions w;
      w.overwrite = o->force;
      data::write_dataset_file(o->out, c, w);
      std::printf("wrote %lld items to %s (%s)\n", static_cast<long long>(o->count), o->out.c_str(), c.name.c_str());
    }
    if (!o->grid.empty()) {
      const torch::Tensor shown = torch::cat(shown_parts);
      if (images) {
        write_png(o->grid, image_grid(shown, 16));
      } else if (shown.size(1) >= 2) {
        write_png(o->grid, scatter_plot(shown, shown));
      } else {
        throw std::invalid_argument("--grid: the generator makes vectors of size " +
                                    std::to_string(shown.size(1)) + "; a plot needs at least 2");
      }
      std::printf("wrote %s\n", o->grid.c_str());
    }
    return kExitOk;
  };
}

}  // namespace distgan::launcher
