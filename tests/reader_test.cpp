// The HDF5 dataset reader: values, layouts, scaling, and one clear error per kind of bad file.
#include <gtest/gtest.h>

#include <functional>
#include <hdf5.h>

#include "data/dataset_reader.h"
#include "data/dataset_writer.h"
#include "tests/test_util.h"

namespace distgan::data {
namespace {

using testing::TempDir;

std::string error_of(const std::function<void()>& f) { return testing::error_message<DataError>(f); }

ReaderOptions options(const std::string& path, const std::string& dataset = "/images") {
  ReaderOptions o;
  o.path = path;
  o.dataset = dataset;
  return o;
}

// 6 images of 2x2x3 (NCHW) whose pixel value encodes (sample, element): 10 * sample + element.
std::string write_coded_images(const TempDir& tmp) {
  DatasetContents c;
  c.shape = {6, 2, 2, 3};
  for (int s = 0; s < 6; ++s)
    for (int e = 0; e < 12; ++e) c.u8.push_back(static_cast<uint8_t>(10 * s + e));
  c.labels = {0, 1, 2, 3, 4, 5};
  write_dataset_file(tmp.path("coded.h5"), c);
  return tmp.path("coded.h5");
}

TEST(DatasetReader, ReadsScatteredIndicesWithLabelsAndScaling) {
  TempDir tmp;
  const std::string path = write_coded_images(tmp);
  DatasetReader r(options(path));
  EXPECT_EQ(r.size(), 6);
  EXPECT_EQ(r.sample_shape(), (std::vector<int64_t>{2, 2, 3}));
  EXPECT_TRUE(r.has_labels());
  const std::vector<int64_t> idx{1, 2, 3, 5};  // one run of three, then a gap
  std::vector<float> out(idx.size() * 12);
  std::vector<int64_t> labels(idx.size());
  r.read(idx, out.data(), labels.data());
  for (size_t i = 0; i < idx.size(); ++i) {
    EXPECT_EQ(labels[i], idx[i]);
    for (int e = 0; e < 12; ++e)
      ASSERT_FLOAT_EQ(out[i * 12 + e], (10 * idx[i] + e) / 127.5f - 1.0f) << "sample " << idx[i] << " element " << e;
  }
  ReaderOptions unit = options(path);
  unit.scale = Scale::kNone;
  DatasetReader raw(unit);
  raw.read({4}, out.data(), nullptr);
  EXPECT_FLOAT_EQ(out[11], 51.0f);
}

TEST(DatasetReader, NhwcLayoutIsDeliveredAsNchw) {
  TempDir tmp;
  // 2 samples of H=2, W=1, C=3 stored NHWC: value = 100 * sample + 10 * pixel + channel.
  std::vector<float> v;
  for (int s = 0; s < 2; ++s)
    for (int p = 0; p < 2; ++p)
      for (int ch = 0; ch < 3; ++ch) v.push_back(100.f * s + 10.f * p + ch);
  testing::write_h5_array(tmp.path("nhwc.h5"), "/x", H5T_NATIVE_FLOAT, {2, 2, 1, 3}, v.data());
  ReaderOptions o = options(tmp.path("nhwc.h5"), "/x");
  o.layout = Layout::kNHWC;
  DatasetReader r(o);
  EXPECT_EQ(r.sample_shape(), (std::vector<int64_t>{3, 2, 1}));
  std::vector<float> out(6);
  r.read({1}, out.data(), nullptr);
  EXPECT_EQ(out, (std::vector<float>{100, 110, 101, 111, 102, 112}));
}

TEST(DatasetReader, UnitScaleMapsZeroOneToMinusOneOne) {
  TempDir tmp;
  const std::vector<float> v{0.0f, 0.25f, 1.0f, 0.5f};
  testing::write_h5_array(tmp.path("u.h5"), "/samples", H5T_NATIVE_FLOAT, {2, 2}, v.data());
  ReaderOptions o = options(tmp.path("u.h5"), "/samples");
  o.scale = Scale::kUnit;
  DatasetReader r(o);
  EXPECT_FALSE(r.is_image());
  std::vector<float> out(4);
  r.read({0, 1}, out.data(), nullptr);
  EXPECT_EQ(out, (std::vector<float>{-1.0f, -0.5f, 1.0f, 0.0f}));
}

TEST(DatasetReader, MissingAndNonHdf5FilesAreRejected) {
  TempDir tmp;
  EXPECT_NE(error_of([&] { DatasetReader r(options(tmp.path("none.h5"))); })
                .find("none.h5: dataset file not found"),
            std::string::npos);
  testing::write_text(tmp.path("text.h5"), "hello");
  EXPECT_NE(error_of([&] { DatasetReader r(options(tmp.path("text.h5"))); }).find("not an HDF5 file"),
            std::string::npos);
}

TEST(DatasetReader, WrongDatasetPathListsWhatTheFileHolds) {
  TempDir tmp;
  const std::string path = write_coded_images(tmp);
  const std::string e = error_of([&] { DatasetReader r(options(path, "/pixels")); });
  EXPECT_NE(e.find("dataset '/pixels' not found; the file holds: /images, /labels"), std::string::npos) << e;
  EXPECT_NE(error_of([&] { DatasetReader r(options(path, "/deep/missing/x")); }).find("not found"),
            std::string::npos);
  testing::write_h5_group(path, "/grp");
  EXPECT_NE(error_of([&] { DatasetReader r(options(path, "/grp")); }).find("'/grp' is a group, not a dataset"),
            std::string::npos);
}

TEST(DatasetReader, WrongDtypeRankAndEmptyDatasetsAreRejected) {
  TempDir tmp;
  const std::string path = tmp.path("bad.h5");
  const std::vector<int16_t> i16(8, 1);
  testing::write_h5_array(path, "/int16", H5T_NATIVE_INT16, {2, 4}, i16.data());
  const std::vector<double> f64(8, 1.0);
  testing::write_h5_array(path, "/float64", H5T_NATIVE_DOUBLE, {2, 4}, f64.data());
  testing::write_h5_array(path, "/flat", H5T_NATIVE_FLOAT, {8}, std::vector<float>(8).data());
  testing::write_h5_array(path, "/five", H5T_NATIVE_UINT8, {1, 1, 1, 1, 8}, std::vector<uint8_t>(8).data());
  testing::write_h5_array(path, "/empty", H5T_NATIVE_UINT8, {0, 1, 28, 28}, nullptr);
  auto message = [&](const std::string& ds) { return error_of([&] { DatasetReader r(options(path, ds)); }); };
  EXPECT_NE(message("/int16").find("has dtype int16; expected uint8 (images) or float32"), std::string::npos);
  EXPECT_NE(message("/float64").find("has dtype float64"), std::string::npos);
  EXPECT_NE(message("/flat").find("has 1 dimensions; expected [N, D]"), std::string::npos);
  EXPECT_NE(message("/five").find("has 5 dimensions"), std::string::npos);
  EXPECT_NE(message("/empty").find("'/empty' is empty (shape [0, 1, 28, 28])"), std::string::npos);
}

TEST(DatasetReader, LabelsOfTheWrongLengthOrTypeAreRejected) {
  TempDir tmp;
  const std::string path = tmp.path("l.h5");
  testing::write_h5_array(path, "/samples", H5T_NATIVE_FLOAT, {3, 2}, std::vector<float>(6).data());
  testing::write_h5_array(path, "/labels", H5T_NATIVE_INT64, {2}, std::vector<int64_t>(2).data());
  testing::write_h5_array(path, "/flabels", H5T_NATIVE_FLOAT, {3}, std::vector<float>(3).data());
  EXPECT_NE(error_of([&] { DatasetReader r(options(path, "/samples")); }).find("has shape [2]; expected [3]"),
            std::string::npos);
  ReaderOptions o = options(path, "/samples");
  o.labels = "/flabels";
  EXPECT_NE(error_of([&] { DatasetReader r(o); }).find("has dtype float32; expected integers"), std::string::npos);
  o.labels = "";
  EXPECT_FALSE(DatasetReader(o).has_labels());
}

TEST(DatasetReader, HugeDeclaredDimensionsAreRejectedBeforeAnyAllocation) {
  TempDir tmp;
  const std::string path = tmp.path("huge.h5");
  // Chunked and never written: a few KiB on disk whatever the declared shape.
  testing::write_h5_array(path, "/wide", H5T_NATIVE_UINT8, {2, 16, 1ull << 60}, nullptr, {1, 1, 1024});
  testing::write_h5_array(path, "/wrap", H5T_NATIVE_UINT8, {2, 1ull << 33, 1ull << 33}, nullptr, {1, 1, 1024});
  testing::write_h5_array(path, "/many", H5T_NATIVE_FLOAT, {1ull << 40, 2}, nullptr, {1024, 2});
  auto message = [&](const std::string& ds) { return error_of([&] { DatasetReader r(options(path, ds)); }); };
  EXPECT_NE(message("/wide").find("declares samples of more than 268435456 values"), std::string::npos)
      << message("/wide");
  // 2^33 * 2^33 wraps to 0 in 64 bits: must still be rejected.
  EXPECT_NE(message("/wrap").find("declares samples of more than"), std::string::npos) << message("/wrap");
  EXPECT_NE(message("/many").find("declares 1099511627776 samples; at most 2147483648 are supported"),
            std::string::npos)
      << message("/many");
}

TEST(DatasetReader, NonFiniteFloatDataIsRefusedNamingTheSample) {
  testing::TempDir dir;
  const std::string path = dir.path("nan.h5");
  std::vector<float> values(4 * 2, 0.5f);
  values[5] = std::nanf("");  // sample 2
  testing::write_h5_array(path, "/samples", H5T_NATIVE_FLOAT, {4, 2}, values.data());
  DatasetReader r(options(path, "/samples"));
  std::vector<float> out(2 * 2);
  r.read({0, 1}, out.data(), nullptr);  // clean samples read fine
  EXPECT_NE(error_of([&] { r.read({1, 2}, out.data(), nullptr); })
                .find("nan.h5: /samples sample 2 holds a non-finite value (nan)"),
            std::string::npos);
}

TEST(DatasetReader, OutOfRangeIndexNamesTheIndex) {
  TempDir tmp;
  DatasetReader r(options(write_coded_images(tmp)));
  std::vector<float> out(24);
  EXPECT_NE(error_of([&] { r.read({5, 6}, out.data(), nullptr); }).find("sample index 6 is outside [0, 6)"),
            std::string::npos);
}

}  // namespace
}  // namespace distgan::data
