// Importers (IDX, .npy, synthetic mixtures) round-tripped through the HDF5 writer and reader.
#include <gtest/gtest.h>

#include <functional>

#include <cmath>
#include <numeric>

#include "data/dataset_reader.h"
#include "data/importers.h"
#include "tests/test_util.h"

namespace distgan::data {
namespace {

using testing::TempDir;

std::string error_of(const std::function<void()>& f) { return testing::error_message<DataError>(f); }

std::vector<uint8_t> ramp(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((i * 7 + 3) % 256);
  return v;
}

// Reads every sample back unscaled.
std::vector<float> read_all(const std::string& path, const std::string& dataset, std::vector<int64_t>* labels) {
  ReaderOptions o;
  o.path = path;
  o.dataset = dataset;
  o.scale = Scale::kNone;
  DatasetReader r(o);
  std::vector<int64_t> idx(static_cast<size_t>(r.size()));
  std::iota(idx.begin(), idx.end(), 0);
  std::vector<float> out(static_cast<size_t>(r.size() * r.sample_elements()));
  if (labels) labels->assign(idx.size(), -1);
  r.read(idx, out.data(), labels && r.has_labels() ? labels->data() : nullptr);
  return out;
}

TEST(IdxImport, GzipAndRawFilesRoundTripThroughHdf5) {
  TempDir tmp;
  const auto pixels = ramp(5 * 4 * 3);
  const std::vector<uint8_t> labels{3, 1, 4, 1, 5};
  for (bool gz : {true, false}) {
    const std::string images = tmp.path(gz ? "img.gz" : "img"), lab = tmp.path(gz ? "lab.gz" : "lab");
    testing::write_idx(images, {5, 4, 3}, pixels, gz);
    testing::write_idx(lab, {5}, labels, gz);
    const DatasetContents c = import_idx(images, lab);
    EXPECT_EQ(c.shape, (std::vector<int64_t>{5, 1, 4, 3}));
    const std::string out = tmp.path(gz ? "gz.h5" : "raw.h5");
    write_dataset_file(out, c);
    std::vector<int64_t> got_labels;
    const auto values = read_all(out, "/images", &got_labels);
    ASSERT_EQ(values.size(), pixels.size());
    for (size_t i = 0; i < pixels.size(); ++i) ASSERT_EQ(values[i], pixels[i]) << i;
    EXPECT_EQ(got_labels, (std::vector<int64_t>{3, 1, 4, 1, 5}));
  }
}

TEST(IdxImport, TruncatedFileIsRejectedWithCounts) {
  TempDir tmp;
  testing::write_idx(tmp.path("t.gz"), {5, 4, 3}, ramp(60), true, 10);
  const std::string e = error_of([&] { read_idx(tmp.path("t.gz")); });
  EXPECT_NE(e.find("truncated IDX file: the header declares 60 values but only 50 are present"), std::string::npos)
      << e;
  testing::write_idx(tmp.path("h"), {5, 4, 3}, {}, false, 70);  // cut inside the header
  EXPECT_NE(error_of([&] { read_idx(tmp.path("h")); }).find("truncated IDX file"), std::string::npos);
}

TEST(IdxImport, BadHeadersAreRejected) {
  TempDir tmp;
  testing::write_text(tmp.path("bad"), "GIF89a....");
  EXPECT_NE(error_of([&] { read_idx(tmp.path("bad")); }).find("not an IDX file"), std::string::npos);
  testing::write_idx(tmp.path("extra"), {2}, {1, 2, 3}, false);  // 3 values for a header of 2
  EXPECT_NE(error_of([&] { read_idx(tmp.path("extra")); }).find("data past the 2 values"), std::string::npos);
  EXPECT_NE(error_of([&] { read_idx(tmp.path("missing")); }).find("cannot open IDX file"), std::string::npos);
  testing::write_idx(tmp.path("img"), {2, 2, 2}, ramp(8), false);
  testing::write_idx(tmp.path("lab"), {3}, {0, 1, 2}, false);
  EXPECT_NE(error_of([&] { import_idx(tmp.path("img"), tmp.path("lab")); }).find("expected IDX labels [2]"),
            std::string::npos);
}

TEST(NpyImport, Uint8ImagesInEveryLayout) {
  TempDir tmp;
  const auto hw = ramp(2 * 3 * 4);
  testing::write_npy(tmp.path("a.npy"), "|u1", {2, 3, 4}, hw.data(), hw.size());
  DatasetContents c = import_npy(tmp.path("a.npy"), "", false);
  EXPECT_EQ(c.shape, (std::vector<int64_t>{2, 1, 3, 4}));
  EXPECT_EQ(c.u8, hw);

  // NHWC [1, 2, 2, 3] -> NCHW [1, 3, 2, 2]: channel k of pixel p comes from p * 3 + k.
  const auto nhwc = ramp(12);
  testing::write_npy(tmp.path("b.npy"), "|u1", {1, 2, 2, 3}, nhwc.data(), nhwc.size());
  c = import_npy(tmp.path("b.npy"), "", true);
  EXPECT_EQ(c.shape, (std::vector<int64_t>{1, 3, 2, 2}));
  for (int k = 0; k < 3; ++k)
    for (int p = 0; p < 4; ++p) EXPECT_EQ(c.u8[k * 4 + p], nhwc[p * 3 + k]);
}

TEST(NpyImport, FloatVectorsWithLabelsRoundTrip) {
  TempDir tmp;
  const std::vector<double> v{0.5, -1.25, 3.0, 1e-3, 7.0, -8.5};
  const std::vector<int64_t> labels{2, 0, 1};
  testing::write_npy(tmp.path("v.npy"), "<f8", {3, 2}, v.data(), v.size() * 8);
  testing::write_npy(tmp.path("l.npy"), "<i8", {3}, labels.data(), labels.size() * 8);
  write_dataset_file(tmp.path("v.h5"), import_npy(tmp.path("v.npy"), tmp.path("l.npy"), false));
  std::vector<int64_t> got_labels;
  const auto values = read_all(tmp.path("v.h5"), "/samples", &got_labels);
  ASSERT_EQ(values.size(), v.size());
  for (size_t i = 0; i < v.size(); ++i) EXPECT_FLOAT_EQ(values[i], static_cast<float>(v[i]));
  EXPECT_EQ(got_labels, labels);
}

TEST(NpyImport, UnsupportedInputsAreRejected) {
  TempDir tmp;
  const std::vector<int16_t> s{1, 2};
  testing::write_npy(tmp.path("be.npy"), ">f4", {2}, s.data(), 4);
  EXPECT_NE(error_of([&] { read_npy(tmp.path("be.npy")); }).find("dtype '>f4' is not supported"), std::string::npos);
  testing::write_npy(tmp.path("short.npy"), "<f4", {10, 2}, s.data(), 4);
  EXPECT_NE(error_of([&] { read_npy(tmp.path("short.npy")); }).find("truncated .npy file"), std::string::npos);
  testing::write_npy(tmp.path("i.npy"), "<i2", {2, 1}, s.data(), 4);
  EXPECT_NE(error_of([&] { import_npy(tmp.path("i.npy"), "", false); }).find("is not a data type for samples"),
            std::string::npos);
  testing::write_text(tmp.path("txt.npy"), "1,2,3\n");
  EXPECT_NE(error_of([&] { read_npy(tmp.path("txt.npy")); }).find("not a NumPy .npy file"), std::string::npos);
}

TEST(IdxImport, HeadersDeclaringHugeArraysFailFastWithoutAllocating) {
  TempDir tmp;
  // Dimensions whose product wraps around 64 bits.
  testing::write_idx(tmp.path("wrap"), {2, 2147549185, 4294836226}, {0, 0, 0, 0}, false);
  EXPECT_NE(error_of([&] { read_idx(tmp.path("wrap")); }).find("declares more than"), std::string::npos);
  // 16 bytes declaring 4 GiB: reported as truncated, without allocating the declared size.
  testing::write_idx(tmp.path("big.gz"), {65536, 256, 256}, {1, 2, 3}, true);
  EXPECT_NE(error_of([&] { read_idx(tmp.path("big.gz")); })
                .find("the header declares 4294967296 values but only 3 are present"),
            std::string::npos);
}

TEST(NpyImport, HostileHeadersGiveErrorsNotCrashes) {
  TempDir tmp;
  auto with_header = [&](const std::string& name, const std::string& dict) {
    testing::write_npy_raw(tmp.path(name), dict, "\x07", 1);
    return tmp.path(name);
  };
  const std::string long_descr = with_header(
      "long.npy", "{'descr': '" + std::string(40000, 'x') + "', 'fortran_order': False, 'shape': (1,), }");
  EXPECT_NE(error_of([&] { read_npy(long_descr); }).find("malformed 'descr'"), std::string::npos);
  const std::string wrap =
      with_header("wrap.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (274177, 67280421310721, 1, 1), }");
  EXPECT_NE(error_of([&] { read_npy(wrap); }).find("implausibly large"), std::string::npos);
  const std::string negative = with_header("neg.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (-5, 2), }");
  EXPECT_NE(error_of([&] { read_npy(negative); }).find("malformed 'shape'"), std::string::npos);
  const std::string huge =
      with_header("huge.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 16), }");
  EXPECT_NE(error_of([&] { read_npy(huge); }).find("expected 128000000000 bytes of data, found 1"),
            std::string::npos);
  const std::string empty = with_header("empty.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (0, 28, 28), }");
  EXPECT_NE(error_of([&] { import_npy(empty, "", false); }).find("the array holds no values"), std::string::npos);
}

TEST(Mixtures, SamplesSitNearTheirLabelledMode) {
  for (Mixture kind : {Mixture::kRing, Mixture::kGrid}) {
    MixtureSpec spec;
    spec.kind = kind;
    spec.num_samples = 5000;
    spec.seed = 3;
    const DatasetContents c = make_mixture(spec);
    const auto modes = mixture_modes(kind);
    EXPECT_EQ(modes.size(), kind == Mixture::kRing ? 8u : 25u);
    const double std = mixture_default_std(kind);
    std::vector<int> counts(modes.size(), 0);
    double sum_sq = 0;
    for (int64_t i = 0; i < spec.num_samples; ++i) {
      const auto& m = modes[static_cast<size_t>(c.labels[i])];
      const double dx = c.f32[2 * i] - m.first, dy = c.f32[2 * i + 1] - m.second;
      ASSERT_LT(std::hypot(dx, dy), 6 * std) << "sample " << i;
      sum_sq += dx * dx + dy * dy;
      ++counts[static_cast<size_t>(c.labels[i])];
    }
    EXPECT_NEAR(std::sqrt(sum_sq / (2 * spec.num_samples)), std, 0.1 * std);  // per-axis std
    for (int n : counts) EXPECT_GT(n, static_cast<int>(spec.num_samples / modes.size() / 2));
    EXPECT_EQ(make_mixture(spec).f32, c.f32) << "same seed, same samples";
  }
}

TEST(DatasetWriter, RefusesToOverwriteAndLeavesNoTemporaryFiles) {
  TempDir tmp;
  MixtureSpec spec;
  spec.num_samples = 10;
  write_dataset_file(tmp.path("m.h5"), make_mixture(spec));
  const std::string before = testing::read_text(tmp.path("m.h5"));
  spec.seed = 99;
  const std::string e = error_of([&] { write_dataset_file(tmp.path("m.h5"), make_mixture(spec)); });
  EXPECT_NE(e.find("file exists; refusing to overwrite it"), std::string::npos) << e;
  EXPECT_EQ(testing::read_text(tmp.path("m.h5")), before);
  EXPECT_EQ(tmp.entries(), std::vector<std::string>{"m.h5"});
  WriteOptions force;
  force.overwrite = true;
  write_dataset_file(tmp.path("m.h5"), make_mixture(spec), force);
  EXPECT_NE(testing::read_text(tmp.path("m.h5")), before);
  EXPECT_EQ(tmp.entries(), std::vector<std::string>{"m.h5"});
}

TEST(DatasetWriter, FailedWriteLeavesNothingBehind) {
  TempDir tmp;
  DatasetContents bad;
  bad.shape = {2, 1, 2, 2};
  bad.u8 = ramp(8);
  bad.labels = {1, 2, 3};  // wrong length: rejected before anything is written
  EXPECT_NE(error_of([&] { write_dataset_file(tmp.path("x.h5"), bad); }).find("3 labels for 2 samples"),
            std::string::npos);
  bad.labels.clear();
  bad.name = "/";  // the root group: HDF5 refuses to create a dataset there
  EXPECT_FALSE(error_of([&] { write_dataset_file(tmp.path("y.h5"), bad); }).empty());
  EXPECT_TRUE(tmp.entries().empty());
  EXPECT_NE(error_of([&] { write_dataset_file(tmp.path("no/such/dir/z.h5"), make_mixture({})); })
                .find("does not exist"),
            std::string::npos);
}

}  // namespace
}  // namespace distgan::data
