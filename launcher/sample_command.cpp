// `distgan sample`: generates items with a trained generator and writes them to HDF5 (the same
// layout as `distgan prep`: /images uint8 [N,C,H,W] or /samples float32 [N,D]) and/or a PNG grid.
#include <ATen/CPUGeneratorImpl.h>

#include <cstdio>

#include "data/dataset_writer.h"
#include "launcher/commands.h"
#include "trainer/state/model_file.h"
#include "trainer/outputs/png_image.h"

namespace distgan::launcher {

namespace {

constexpr int64_t kBatch = 256;  // generated per forward pass

struct SampleOptions {
  std::string checkpoint, out, grid;
  int64_t count = 64;
  uint64_t seed = 0;
  bool force = false;
  bool no_ema = false;
  int64_t class_index = -1;  // conditional models: -1 = every class in turn
};

// Grids of a conditional model without --class: one row of 16 per class, each class in turn.
constexpr int64_t kGridColumns = 16;

struct SampledItems {
  data::DatasetContents contents;        // the items in their stored form (uint8 images, float vectors)
  std::vector<torch::Tensor> shown_parts;  // the first items, for --grid
  bool finite = true;
};

// Batch by batch, each converted to its stored form at once: memory is the output's size (uint8
// for images), not a float copy of everything.
SampledItems sample_items(const SampleOptions& o, LoadedModels& loaded, bool ema) {
  auto& g = ema ? loaded.models.generator_ema : loaded.models.generator;
  g->eval();
  const int64_t classes = loaded.spec.num_classes;
  auto labels_for = [&](int64_t first, int64_t n) -> torch::Tensor {
    if (classes == 0) return {};
    if (o.class_index >= 0) return torch::full({n}, o.class_index, torch::kInt64);
    return torch::arange(first, first + n, torch::kInt64).div(kGridColumns, "floor").remainder(classes);
  };
  torch::NoGradGuard no_grad;
  at::Generator noise = at::detail::createCPUGenerator(o.seed);
  const bool images = loaded.spec.sample_shape.size() == 3;
  // A 16x16 grid (a row per class, up to 16 classes, for conditional models); the scatter plot's points.
  const int64_t shown_limit =
      !images ? 2500 : classes > 0 && o.class_index < 0 ? kGridColumns * std::min<int64_t>(classes, 16) : 256;
  SampledItems r;
  int64_t shown_count = 0;
  for (int64_t done = 0; done < o.count; done += kBatch) {
    const int64_t n = std::min(kBatch, o.count - done);
    const torch::Tensor labels = labels_for(done, n);
    const torch::Tensor items = generate(g, torch::randn({n, loaded.spec.z_dim}, noise), labels).contiguous();
    if (labels.defined()) r.contents.labels.insert(r.contents.labels.end(), labels.data_ptr<int64_t>(), labels.data_ptr<int64_t>() + n);
    r.finite = r.finite && torch::isfinite(items).all().item<bool>();
    if (shown_count < shown_limit) {
      r.shown_parts.push_back(items.narrow(0, 0, std::min(n, shown_limit - shown_count)));
      shown_count += r.shown_parts.back().size(0);
    }
    if (o.out.empty() && shown_count >= shown_limit) break;  // only the grid is wanted
    if (images) {
      const torch::Tensor bytes =
          ((torch::nan_to_num(items, 0.0) + 1) * 127.5).round().clamp(0, 255).to(torch::kUInt8).contiguous();
      r.contents.u8.insert(r.contents.u8.end(), bytes.data_ptr<uint8_t>(), bytes.data_ptr<uint8_t>() + bytes.numel());
    } else {
      r.contents.f32.insert(r.contents.f32.end(), items.data_ptr<float>(), items.data_ptr<float>() + items.numel());
    }
  }
  return r;
}

void write_items(const SampleOptions& o, const LoadedModels& loaded, bool ema, data::DatasetContents& c) {
  const bool images = loaded.spec.sample_shape.size() == 3;
  c.name = images ? "/images" : "/samples";
  c.shape = {o.count};
  c.shape.insert(c.shape.end(), loaded.spec.sample_shape.begin(), loaded.spec.sample_shape.end());
  c.attributes = {{"source", "distgan sample"}, {"checkpoint", o.checkpoint},
                  {"step", std::to_string(loaded.step)}, {"seed", std::to_string(o.seed)},
                  {"generator", ema ? "ema" : "raw"}};  // labels (conditional models): the class asked for
  data::WriteOptions w;
  w.overwrite = o.force;
  data::write_dataset_file(o.out, c, w);
  std::printf("wrote %lld items to %s (%s)\n", static_cast<long long>(o.count), o.out.c_str(), c.name.c_str());
}

void write_grid(const std::string& path, const torch::Tensor& shown, bool images) {
  if (images) {
    write_png(path, image_grid(shown, kGridColumns));
  } else if (shown.size(1) >= 2) {
    write_png(path, scatter_plot(shown, shown));
  } else {
    throw std::invalid_argument("--grid: the generator makes vectors of size " + std::to_string(shown.size(1)) +
                                "; a plot needs at least 2");
  }
  std::printf("wrote %s\n", path.c_str());
}

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
  cmd->add_flag("--no-ema", o->no_ema, "use the raw generator, not its moving average (EMA), when the run kept one");
  cmd->add_option("--class", o->class_index,
                  "conditional models: generate this class only (default: every class in turn; the grid has one "
                  "row per class)")
      ->check(CLI::NonNegativeNumber);

  return [o]() -> int {
    if (o->out.empty() && o->grid.empty()) throw CLI::ValidationError("give --out FILE.h5 and/or --grid FILE.png");
    LoadedModels loaded = load_model_file(o->checkpoint);
    const bool ema = loaded.models.generator_ema && !o->no_ema;
    const int64_t classes = loaded.spec.num_classes;
    if (o->class_index >= 0 && classes == 0)
      throw CLI::ValidationError("--class: " + o->checkpoint + " holds an unconditional model (model.conditional: false)");
    if (o->class_index >= classes && classes > 0)
      throw CLI::ValidationError("--class: " + std::to_string(o->class_index) + " is not a class of this model (0 to " +
                                 std::to_string(classes - 1) + ")");
    std::printf("generating with the %s generator%s\n", ema ? "EMA" : "raw",
                loaded.models.generator_ema ? "" : " (the run kept no EMA)");
    SampledItems items = sample_items(*o, loaded, ema);
    if (!items.finite) std::fprintf(stderr, "distgan: warning: the generator produced non-finite values (a diverged model?)\n");
    if (!o->out.empty()) write_items(*o, loaded, ema, items.contents);
    if (!o->grid.empty()) write_grid(o->grid, torch::cat(items.shown_parts), loaded.spec.sample_shape.size() == 3);
    return kExitOk;
  };
}

}  // namespace distgan::launcher
