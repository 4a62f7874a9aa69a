// `distgan inspect`: what an HDF5 dataset file holds: datasets, dtype, shape, attributes, the
// value range of a sample of the data and the label histogram.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>

#include "data/dataset_reader.h"
#include "launcher/commands.h"

namespace distgan::launcher {

namespace {

constexpr int64_t kStatSamples = 1000;  // samples read for the value statistics
constexpr int64_t kStatBytes = int64_t{256} << 20;
constexpr int64_t kLabelBlock = 4096;   // labels are read in blocks: the file is never loaded whole

struct InspectOptions {
  data::ReaderOptions reader{"", ""};
  std::string layout = "NCHW";
};

// /images when the file has it, else /samples (the two names `distgan prep` writes).
std::string default_dataset(const std::string& path) {
  data::h5_silence_errors();
  data::H5Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (file.valid() && H5Lexists(file.get(), "/images", H5P_DEFAULT) <= 0 &&
      H5Lexists(file.get(), "/samples", H5P_DEFAULT) > 0)
    return "/samples";
  return "/images";
}

herr_t print_attribute(hid_t loc, const char* name, const H5A_info_t*, void*) {
  data::H5Handle attr(H5Aopen(loc, name, H5P_DEFAULT), H5Aclose);
  data::H5Handle type(H5Aget_type(attr.get()), H5Tclose);
  if (H5Tget_class(type.get()) == H5T_STRING && !H5Tis_variable_str(type.get())) {
    std::string value(H5Tget_size(type.get()), '\0');
    if (H5Aread(attr.get(), type.get(), value.data()) >= 0) {
      value.resize(std::strlen(value.c_str()));
      std::printf("  attribute %s = %s\n", name, value.c_str());
      return 0;
    }
  }
  std::printf("  attribute %s (%s)\n", name, data::h5_type_name(type.get()).c_str());
  return 0;
}

}  // namespace

Runner add_inspect_command(CLI::App& app) {
  auto o = std::make_shared<InspectOptions>();
  auto* cmd = app.add_subcommand("inspect", "show what an HDF5 dataset file holds");
  cmd->add_option("file", o->reader.path, "HDF5 dataset file")->required();
  cmd->add_option("--dataset", o->reader.dataset,
                  "path of the samples inside the file (default: /images, else /samples)");
  cmd->add_option("--labels", o->reader.labels, "path of the labels inside the file")->capture_default_str();
  cmd->add_option("--layout", o->layout, "storage order of 4-D images")
      ->check(CLI::IsMember({"NCHW", "NHWC"}))->capture_default_str();

  return [o]() -> int {
    o->reader.layout = data::parse_layout(o->layout);
    o->reader.scale = data::Scale::kNone;  // report stored values
    if (o->reader.dataset.empty()) o->reader.dataset = default_dataset(o->reader.path);
    data::DatasetReader reader(o->reader);
    std::printf("%s\n", reader.describe().c_str());
    {
      data::H5Handle file(H5Fopen(o->reader.path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
      if (file.valid()) H5Aiterate2(file.get(), H5_INDEX_NAME, H5_ITER_NATIVE, nullptr, print_attribute, nullptr);
    }
    // Value range and mean over evenly spaced samples.
    // At most kStatSamples samples and kStatBytes of values: samples may be large.
    const int64_t n = std::max<int64_t>(
        1, std::min({reader.size(), kStatSamples, kStatBytes / 4 / reader.sample_elements()}));
    std::vector<int64_t> indices(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) indices[i] = i * reader.size() / n;
    std::vector<float> values(static_cast<size_t>(n * reader.sample_elements()));
    reader.read(indices, values.data(), nullptr);
    const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
    double sum = 0;
    for (float v : values) sum += v;
    std::printf("  values over %lld samples: min %g, max %g, mean %g\n", static_cast<long long>(n), *lo, *hi,
                sum / static_cast<double>(values.size()));
    if (reader.has_labels()) {
      std::map<int64_t, int64_t> counts;
      std::vector<int64_t> block;
      for (int64_t first = 0; first < reader.size(); first += kLabelBlock) {
        const int64_t count = std::min(kLabelBlock, reader.size() - first);
        block.resize(static_cast<size_t>(count));
        reader.read_labels(first, count, block.data());
        for (int64_t label : block) ++counts[label];
      }
      std::printf("  labels: %zu classes:", counts.size());
      for (const auto& [label, count] : counts) std::printf(" %lld:%lld", static_cast<long long>(label),
                                                            static_cast<long long>(count));
      std::printf("\n");
    }
    return kExitOk;
  };
}

}  // namespace distgan::launcher
