// The checkpoint file format (round trip, damage detection), the checkpoint directory helpers, the
// resume rules for configurations, and a checkpoint writer killed mid-write.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "data/data_error.h"
#include "data/h5_handle.h"
#include "tests/test_util.h"
#include "trainer/config/config_schema.h"
#include "trainer/state/checkpoint.h"
#include "trainer/state/tensor_file.h"
#include "trainer/state/checkpoint_writer.h"
#include "trainer/outputs/metrics_log.h"
#include "trainer/state/resume.h"

namespace distgan {
namespace {

using testing::error_message;
using testing::TempDir;

TensorFileData sample_data() {
  TensorFileData d;
  d.tensors.emplace_back("generator/0.weight", torch::arange(12, torch::kFloat32).reshape({3, 4}));
  d.tensors.emplace_back("generator/1.running_var", torch::tensor({0.5, 1.5}, torch::kFloat64));
  d.tensors.emplace_back("optimizer/generator/0.weight/step", torch::tensor(7, torch::kInt64).reshape({}));
  d.tensors.emplace_back("rng/noise", torch::arange(10, torch::kUInt8).reshape({2, 5}));
  d.attributes["step"] = "7";
  d.attributes["config"] = std::string(70000, 'x');  // larger than an HDF5 compact attribute
  return d;
}

// Overwrites attribute `name` of the file with `value` (as a hand edit would).
void set_attribute(const std::string& path, const std::string& name, const std::string& value) {
  data::H5Handle f(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
  ASSERT_TRUE(f.valid());
  H5Adelete(f.get(), name.c_str());
  data::h5_write_string_attribute(f.get(), name, value, path);
}

TEST(CheckpointFile, RoundTripsEveryDtypeShapeAndAttribute) {
  TempDir dir;
  const TensorFileData d = sample_data();
  write_tensor_file(dir.path("c.h5"), d);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"c.h5"});  // no temporary left behind
  TensorFileReader r(dir.path("c.h5"));
  EXPECT_EQ(r.attribute("format"), kCheckpointFormat);
  EXPECT_EQ(r.attribute("step"), "7");
  EXPECT_EQ(r.attribute("config").size(), 70000u);
  EXPECT_EQ(r.integer_attribute("step", 0, 10), 7);
  EXPECT_EQ(r.tensor_names("generator/"),
            (std::vector<std::string>{"generator/0.weight", "generator/1.running_var"}));
  for (const auto& [name, t] : d.tensors) {
    const torch::Tensor back = r.read(name, t.scalar_type(), t.sizes().vec());
    EXPECT_TRUE(torch::equal(back, t)) << name;
    EXPECT_EQ(back.sizes(), t.sizes()) << name;
  }
  r.verify_all();
}

TEST(CheckpointFile, RefusesWhatDoesNotFitBeforeReading) {
  TempDir dir;
  write_tensor_file(dir.path("c.h5"), sample_data());
  TensorFileReader r(dir.path("c.h5"));
  EXPECT_NE(error_message<data::DataError>([&] { r.read("generator/0.weight", torch::kFloat32, {4, 3}); })
                .find("generator/0.weight has shape [3,4] but this run expects [4,3]"),
            std::string::npos);
  EXPECT_NE(error_message<data::DataError>([&] { r.read("generator/0.weight", torch::kInt64, {3, 4}); })
                .find("is Float but this run expects Long"),
            std::string::npos);
  EXPECT_NE(error_message<data::DataError>([&] { r.read("generator/9.bias", torch::kFloat32, {3}); })
                .find("generator/9.bias is missing"),
            std::string::npos);
  EXPECT_NE(error_message<data::DataError>([&] { r.read_any_shape("rng/noise", torch::kUInt8, 9); })
                .find("more than the 9 elements expected"),
            std::string::npos);
  EXPECT_NE(error_message<data::DataError>([&] { r.integer_attribute("step", 8, 10); })
                .find("attribute step = '7' is not an integer in [8, 10]"),
            std::string::npos);
}

TEST(CheckpointFile, AnEditedAttributeFailsTheChecksum) {
  TempDir dir;
  write_tensor_file(dir.path("c.h5"), sample_data());
  set_attribute(dir.path("c.h5"), "step", "8");
  EXPECT_NE(error_message<data::DataError>([&] { TensorFileReader r(dir.path("c.h5")); }).find("checksum mismatch"),
            std::string::npos);
}

TEST(CheckpointFile, AFlippedTensorByteIsFoundAndNamed) {
  TempDir dir;
  write_tensor_file(dir.path("c.h5"), sample_data());
  {
    data::H5Handle f(H5Fopen(dir.path("c.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
    data::H5Handle set(H5Dopen2(f.get(), "rng/noise", H5P_DEFAULT), H5Dclose);
    uint8_t values[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 99};
    ASSERT_GE(H5Dwrite(set.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, values), 0);
  }
  TensorFileReader r(dir.path("c.h5"));  // attributes are intact
  EXPECT_NE(error_message<data::DataError>([&] { r.verify_all(); }).find("rng/noise: crc32 mismatch"),
            std::string::npos);
}

TEST(CheckpointFile, ATruncatedOrForeignFileIsRefused) {
  TempDir dir;
  write_tensor_file(dir.path("c.h5"), sample_data());
  std::filesystem::resize_file(dir.path("c.h5"), std::filesystem::file_size(dir.path("c.h5")) / 2);
  EXPECT_NE(error_message<data::DataError>([&] { TensorFileReader r(dir.path("c.h5")); }).find(dir.path("c.h5")),
            std::string::npos);
  testing::write_text(dir.path("text.h5"), "not hdf5");
  EXPECT_NE(error_message<data::DataError>([&] { TensorFileReader r(dir.path("text.h5")); })
                .find("not a readable HDF5 file"),
            std::string::npos);
  write_tensor_file(dir.path("d.h5"), sample_data());
  set_attribute(dir.path("d.h5"), "format", "distgan-model-1");
  EXPECT_NE(error_message<data::DataError>([&] { TensorFileReader r(dir.path("d.h5")); })
                .find("format 'distgan-model-1' is not a checkpoint this distgan reads"),
            std::string::npos);
}

TEST(CheckpointDirectory, ListsNewestFirstIgnoringOtherFilesAndPrunesTheOldest) {
  TempDir dir;
  for (const char* name : {"ckpt_00000100.h5", "ckpt_00000300.h5", "ckpt_00000200.h5", ".ckpt_00000400.h5.tmp.1.2",
                           "ckpt_00000500.h5.abandoned", "ckpt_x.h5", "notes.txt"})
    testing::write_text(dir.path(name), "x");
  const auto found = list_checkpoints(dir.dir().string());
  ASSERT_EQ(found.size(), 3u);
  EXPECT_EQ(found[0].step, 300);
  EXPECT_EQ(found[2].step, 100);
  EXPECT_EQ(checkpoint_path("run", 42), "run/checkpoints/ckpt_00000042.h5");
  const auto removed = prune_checkpoints(dir.dir().string(), 2);
  EXPECT_EQ(removed, std::vector<std::string>{dir.path("ckpt_00000100.h5")});
  prune_checkpoints(dir.dir().string(), 0);  // keep is at least 1: the newest always stays
  EXPECT_EQ(list_checkpoints(dir.dir().string()).size(), 1u);
  EXPECT_TRUE(std::filesystem::exists(dir.path("ckpt_00000300.h5")));
}

TEST(CheckpointWriter, WritesInTheBackgroundKeepsTheNewestAndReportsFailures) {
  TempDir dir;
  {
    CheckpointWriter writer(dir.path("checkpoints"), 5);  // creates the directory
    for (int step : {1, 2, 3}) writer.submit(checkpoint_path(dir.dir().string(), step), sample_data());
    writer.flush();
  }
  EXPECT_EQ(list_checkpoints(dir.path("checkpoints")).size(), 3u);
  {
    CheckpointWriter writer(dir.path("checkpoints"), 2);
    writer.submit(checkpoint_path(dir.dir().string(), 4), sample_data());
    writer.flush();
    const auto written = writer.take_completed();
    ASSERT_TRUE(written.has_value());
    EXPECT_GT(written->bytes, 70000);
  }
  const auto after = list_checkpoints(dir.path("checkpoints"));
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0].step, 4);
  EXPECT_EQ(after[1].step, 3);
  CheckpointWriter broken("/proc/no-such-dir", 2);
  broken.submit("/proc/no-such-dir/ckpt_00000001.h5", sample_data());
  broken.flush();
  const auto failure = broken.take_failure();
  ASSERT_TRUE(failure.has_value());
  EXPECT_NE(failure->find("/proc/no-such-dir"), std::string::npos) << *failure;
  EXPECT_FALSE(broken.take_failure().has_value());  // reported once
}

// A process killed (SIGKILL) while it writes checkpoint after checkpoint under one name: what is
// left under that name is always a complete checkpoint that loads.
TEST(CheckpointWriter, SigkillDuringWritingLeavesTheNameLoadable) {
  TempDir dir;
  const std::string path = dir.path("ckpt_00000001.h5");
  TensorFileData big = sample_data();
  big.tensors.emplace_back("generator/big", torch::rand({16 << 20}));  // 64 MiB: writes take a while
  write_tensor_file(path, big);
  for (int delay_ms : {50, 150, 300}) {
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      for (;;) write_tensor_file(path, big);
    }
    usleep(delay_ms * 1000);
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status));
    TensorFileReader r(path);
    r.verify_all();
    EXPECT_EQ(list_checkpoints(dir.dir().string()).size(), 1u);  // a hidden temporary is not a checkpoint
  }
}

TEST(ResumeRules, SafeKeysMayChangeOthersAreNamed) {
  Config saved, current;
  current.training.lr_d = 1e-4;
  current.training.steps = 5000;
  current.logging.every = 10;
  current.training.code_reseed_every = 1000;  // a change to the training, not to what the checkpoint holds
  std::vector<std::string> allowed;
  EXPECT_TRUE(config_differences(saved, current, &allowed).empty());
  EXPECT_EQ(allowed.size(), 4u);
  EXPECT_EQ(allowed[1], "training.lr_d: 0.0002 -> 0.0001");
  EXPECT_NE(std::find(allowed.begin(), allowed.end(), "training.code_reseed.every: 0 -> 1000"), allowed.end());
  current.model.ch = 32;
  current.training.batch_size = 64;
  const auto refused = config_differences(saved, current, nullptr);
  ASSERT_EQ(refused.size(), 2u);
  EXPECT_EQ(refused[0], "model.ch: checkpoint 64, this run 32");
  EXPECT_EQ(refused[1], "training.batch_size: checkpoint 128, this run 64");
  CheckpointInfo info;
  info.path = "ck.h5";
  info.sample_shape = {1, 28, 28};
  info.dataset_size = 100;
  const std::string message = error_message<ConfigError>([&] { check_resume_config(info, current, {1, 28, 28}, 99); });
  EXPECT_NE(message.find("ck.h5 does not fit this run:\n  model.ch: checkpoint 64, this run 32"), std::string::npos);
  EXPECT_NE(message.find("dataset size: checkpoint 100 samples, this run's 99"), std::string::npos);
}

// The schema's resume column, read back whole: what a model, its data order or its noise depend on
// must match; rates, schedules and run settings may change. A key added to the schema lands in the
// second list unless it is marked on purpose.
TEST(ResumeRules, TheSchemasResumeColumnListsExactlyTheKeysThatMayChange) {
  std::vector<std::string> may_change, must_match;
  for (const auto& key : config_schema()) (key.may_change_on_resume ? may_change : must_match).push_back(key.path());
  EXPECT_EQ(must_match, (std::vector<std::string>{
                            "data.dataset", "data.labels", "data.layout", "data.scale", "data.shuffle",
                            "data.remainder", "model.name", "model.z_dim", "model.ch", "model.mlp_width",
                            "model.mlp_depth", "model.mlp_batchnorm", "model.latent_categories",
                            "model.latent_noise_scale", "model.conditional", "model.num_classes",
                            "model.d_spectral_norm", "training.batch_size", "training.loss", "training.n_critic",
                            "training.seed", "training.augment"}));
  for (const char* key : {"data.path", "training.steps", "training.lr_g", "training.code_reseed.until",
                          "checkpoint.every", "logging.level", "cluster.backend", "eval.every"}) {
    EXPECT_NE(std::find(may_change.begin(), may_change.end(), key), may_change.end()) << key;
    EXPECT_TRUE(resume_may_change(key)) << key;
  }
  EXPECT_FALSE(resume_may_change("model.ch"));
  EXPECT_FALSE(resume_may_change("training.no_such_key"));
}

TEST(ResumeRules, ANewRunRefusesADirectoryWithCheckpointsAndNewerOnesAreSetAside) {
  TempDir dir;
  const std::string run = dir.dir().string();
  refuse_fresh_start_over_checkpoints(run);  // nothing there: fine
  std::filesystem::create_directories(checkpoint_directory(run));
  for (int step : {100, 200, 300}) testing::write_text(checkpoint_path(run, step), "x");
  EXPECT_NE(error_message<ConfigError>([&] { refuse_fresh_start_over_checkpoints(run); })
                .find("already holds checkpoints (newest: step 300); continue that run with --resume auto"),
            std::string::npos);
  EXPECT_EQ(set_aside_newer_checkpoints(run, 100).size(), 2u);
  EXPECT_EQ(list_checkpoints(checkpoint_directory(run)).size(), 1u);
  EXPECT_TRUE(std::filesystem::exists(checkpoint_path(run, 300) + ".abandoned"));
}

TEST(ResumeRules, AutoSkipsADamagedNewestCheckpoint) {
  TempDir dir;
  const std::string run = dir.dir().string();
  EXPECT_FALSE(open_resume_source("auto", run).reader);  // no checkpoints: a new run
  std::filesystem::create_directories(checkpoint_directory(run));
  testing::write_text(checkpoint_path(run, 300), "garbage");
  EXPECT_NE(error_message<data::DataError>([&] { open_resume_source("auto", run); })
                .find("none of its 1 checkpoints is valid"),
            std::string::npos);
  EXPECT_NE(error_message<data::DataError>([&] { open_resume_source(checkpoint_path(run, 300), run); })
                .find("not a readable HDF5 file"),
            std::string::npos);
}

TEST(MetricsLog, TruncateAfterDropsTheStepsToBeTrainedAgain) {
  TempDir dir;
  testing::write_text(dir.path("m.jsonl"), "{\"step\":10}\n{\"step\":20}\n{\"step\":30}\nnot json\n");
  EXPECT_EQ(MetricsLog::truncate_after(dir.path("m.jsonl"), 20), 1);
  EXPECT_EQ(testing::read_text(dir.path("m.jsonl")), "{\"step\":10}\n{\"step\":20}\nnot json\n");
  EXPECT_EQ(MetricsLog::truncate_after(dir.path("none.jsonl"), 20), 0);
}

}  // namespace
}  // namespace distgan
