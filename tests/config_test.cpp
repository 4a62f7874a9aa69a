// The YAML configuration: defaults, valid files, each kind of error (with file, line and key),
// --set overrides and the printed configuration.
#include <gtest/gtest.h>

#include "tests/test_util.h"
#include "trainer/config/config.h"

namespace distgan {
namespace {

using testing::TempDir;

// The message of the ConfigError that `f` throws ("" if none).
template <typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, DefaultsWhenTheFileIsEmpty) {
  const Config c = parse_config("", "empty.yaml");
  EXPECT_EQ(c.model.name, "dcgan");
  EXPECT_EQ(c.training.batch_size, 128);
  EXPECT_DOUBLE_EQ(c.training.lr_d, 2e-4);
  EXPECT_EQ(c.data.dataset, "/images");
}

TEST(Config, ValidFileSetsEveryKindOfValue) {
  const Config c = parse_config(R"(
data:
  path: /tmp/x.h5
  shuffle: false
  layout: NHWC
model:
  name: mlp
  mlp_depth: 4
training:
  lr_d: 1e-4
  betas_g: [0.0, 0.99]
  batch_size: 64
cluster:
  bucket_mb: 0.5
)",
                                "ok.yaml");
  EXPECT_EQ(c.data.path, "/tmp/x.h5");
  EXPECT_FALSE(c.data.shuffle);
  EXPECT_EQ(c.data.layout, "NHWC");
  EXPECT_EQ(c.model.name, "mlp");
  EXPECT_EQ(c.model.mlp_depth, 4);
  EXPECT_DOUBLE_EQ(c.training.lr_d, 1e-4);
  EXPECT_DOUBLE_EQ(c.training.betas_g[0], 0.0);
  EXPECT_DOUBLE_EQ(c.training.betas_g[1], 0.99);
  EXPECT_EQ(c.training.batch_size, 64);
  EXPECT_DOUBLE_EQ(c.cluster.bucket_mb, 0.5);
  EXPECT_DOUBLE_EQ(c.training.lr_g, 2e-4);  // untouched keys keep their defaults
}

TEST(Config, UnknownKeyNamesFileLineAndSuggestsTheNearestKey) {
  const std::string e = error_of([] { parse_config("training:\n  steps: 10\n  lr_dd: 0.1\n", "run.yaml"); });
  EXPECT_NE(e.find("run.yaml:3"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key 'training.lr_dd'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'training.lr_d'?"), std::string::npos) << e;
}

TEST(Config, UnknownSectionIsRejectedWithASuggestion) {
  const std::string e = error_of([] { parse_config("trainig:\n  steps: 10\n", "run.yaml"); });
  EXPECT_NE(e.find("run.yaml:1: unknown section 'trainig'; did you mean 'training'?"), std::string::npos) << e;
}

TEST(Config, FarFetchedKeyGetsNoSuggestion) {
  const std::string e = error_of([] { parse_config("model:\n  completely_different: 1\n", "run.yaml"); });
  EXPECT_NE(e.find("unknown key 'model.completely_different'"), std::string::npos) << e;
  EXPECT_EQ(e.find("did you mean"), std::string::npos) << e;
}

TEST(Config, WrongTypeSaysWhatWasExpected) {
  std::string e = error_of([] { parse_config("training:\n  steps: many\n", "t.yaml"); });
  EXPECT_NE(e.find("t.yaml:2: training.steps: expected an integer in [0, "), std::string::npos) << e;
  EXPECT_NE(e.find("found 'many'"), std::string::npos) << e;
  e = error_of([] { parse_config("data:\n  shuffle: maybe\n", "t.yaml"); });
  EXPECT_NE(e.find("data.shuffle: expected true or false"), std::string::npos) << e;
  e = error_of([] { parse_config("training:\n  betas_d: 0.5\n", "t.yaml"); });
  EXPECT_NE(e.find("training.betas_d: expected a list of two numbers"), std::string::npos) << e;
  e = error_of([] { parse_config("model:\n  name: [dcgan]\n", "t.yaml"); });
  EXPECT_NE(e.find("model.name: expected one of dcgan, resnet, mlp, found a list"), std::string::npos) << e;
  e = error_of([] { parse_config("training:\n  batch_size: 12.5\n", "t.yaml"); });
  EXPECT_NE(e.find("training.batch_size: expected an integer"), std::string::npos) << e;
}

TEST(Config, OutOfRangeValuesAreRejected) {
  std::string e = error_of([] { parse_config("training:\n  lr_g: 0\n", "r.yaml"); });
  EXPECT_NE(e.find("r.yaml:2: training.lr_g: expected a number in (0, 1], found '0'"), std::string::npos) << e;
  e = error_of([] { parse_config("training:\n  batch_size: -4\n", "r.yaml"); });
  EXPECT_NE(e.find("training.batch_size: expected an integer in [1, "), std::string::npos) << e;
  e = error_of([] { parse_config("training:\n  lr_d: .nan\n", "r.yaml"); });
  EXPECT_NE(e.find("training.lr_d: expected a number"), std::string::npos) << e;
  e = error_of([] { parse_config("cluster:\n  backend: gloo\n", "r.yaml"); });
  EXPECT_NE(e.find("cluster.backend: expected one of auto, mpi, nccl, found 'gloo'"), std::string::npos) << e;
}

TEST(Config, MalformedYamlNamesTheLine) {
  const std::string e = error_of([] { parse_config("training:\n  steps: [1, 2\n", "bad.yaml"); });
  EXPECT_NE(e.find("bad.yaml:"), std::string::npos) << e;
  EXPECT_NE(e.find("malformed YAML"), std::string::npos) << e;
}

TEST(Config, SectionThatIsNotAMappingIsRejected) {
  const std::string e = error_of([] { parse_config("training: 5\n", "s.yaml"); });
  EXPECT_NE(e.find("s.yaml:1: section 'training' must be a mapping"), std::string::npos) << e;
  EXPECT_NE(error_of([] { parse_config("- a\n- b\n", "s.yaml"); }).find("expected a mapping of sections"),
            std::string::npos);
}

TEST(Config, DuplicateAndNonScalarKeysAreRejected) {
  std::string e = error_of([] { parse_config("training:\n  steps: 5\n  steps: 7\n", "d.yaml"); });
  EXPECT_NE(e.find("d.yaml:3: 'training.steps' is given twice"), std::string::npos) << e;
  e = error_of([] { parse_config("data:\n  ? [a, b]\n  : 1\n", "k.yaml"); });
  EXPECT_NE(e.find("k.yaml:2: expected a plain key name in section 'data'"), std::string::npos) << e;
  e = error_of([] { parse_config("[a]: 1\n", "k.yaml"); });
  EXPECT_NE(e.find("k.yaml:1: expected a plain key name"), std::string::npos) << e;
}

TEST(Config, MissingFileIsAClearError) {
  const std::string e = error_of([] { load_config("/nonexistent/run.yaml"); });
  EXPECT_NE(e.find("/nonexistent/run.yaml: cannot read the config file"), std::string::npos) << e;
}

TEST(Config, LoadsAFileAndKeepsItsText) {
  TempDir tmp;
  const std::string text = "model:\n  ch: 32\n";
  testing::write_text(tmp.path("c.yaml"), text);
  const Config c = load_config(tmp.path("c.yaml"));
  EXPECT_EQ(c.model.ch, 32);
  EXPECT_EQ(c.source_text, text);
  EXPECT_EQ(c.source_path, tmp.path("c.yaml"));
}

TEST(Config, OverridesAreValidatedLikeTheFile) {
  Config c;
  apply_override(c, "training.lr_d=1e-4");
  apply_override(c, "data.labels=");
  apply_override(c, "training.betas_d=[0.1, 0.2]");
  EXPECT_DOUBLE_EQ(c.training.lr_d, 1e-4);
  EXPECT_EQ(c.data.labels, "");
  EXPECT_DOUBLE_EQ(c.training.betas_d[1], 0.2);
  std::string e = error_of([&] { apply_override(c, "training.lr_dd=1"); });
  EXPECT_NE(e.find("--set training.lr_dd=1: unknown key 'training.lr_dd'; did you mean 'training.lr_d'?"),
            std::string::npos)
      << e;
  e = error_of([&] { apply_override(c, "training.steps=abc"); });
  EXPECT_NE(e.find("--set training.steps=abc: training.steps: expected an integer"), std::string::npos) << e;
  e = error_of([&] { apply_override(c, "training.steps"); });
  EXPECT_NE(e.find("expected section.key=value"), std::string::npos) << e;
  EXPECT_EQ(c.training.steps, 2000);  // a failed override leaves the value alone
}

TEST(Config, PrintedConfigReadsBackToTheSameValues) {
  Config c;
  apply_override(c, "training.lr_d=3.5e-5");
  apply_override(c, "data.path=my data: #1.h5");
  apply_override(c, "model.name=mlp");
  apply_override(c, "data.shuffle=false");
  const std::string printed = print_config(c);
  EXPECT_NE(printed.find("# discriminator Adam learning rate"), std::string::npos);
  const Config back = parse_config(printed, "printed");
  const auto body = [](const std::string& text) { return text.substr(text.find('\n')); };  // past the header
  EXPECT_EQ(body(print_config(back)), body(printed));
  EXPECT_DOUBLE_EQ(back.training.lr_d, 3.5e-5);
  EXPECT_EQ(back.data.path, "my data: #1.h5");
  EXPECT_FALSE(back.data.shuffle);
}

TEST(Config, EveryKeyHasADescriptionInThePrintedConfig) {
  const std::string printed = print_config(Config{});
  for (const std::string& key : config_keys()) {
    const std::string name = key.substr(key.rfind('.') + 1);  // nested keys print under their group
    const size_t at = printed.find("  " + name + ": ");
    ASSERT_NE(at, std::string::npos) << key;
    const std::string line = printed.substr(at, printed.find('\n', at) - at);
    EXPECT_NE(line.find("# "), std::string::npos) << key;
  }
}

TEST(Config, NearestKeyFindsSmallTypos) {
  EXPECT_EQ(nearest_key("model.z_dmi"), "model.z_dim");
  EXPECT_EQ(nearest_key("checkpoint.evry"), "checkpoint.every");
  EXPECT_EQ(nearest_key("zzz"), "");
}

}  // namespace
}  // namespace distgan
