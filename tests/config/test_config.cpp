#include <gtest/gtest.h>

#include <fstream>

#include "test_support.h"
#include "vidfeat/common/error.h"
#include "vidfeat/config/config.h"

using vidfeat::Config;
using IntLists = std::vector<std::vector<int>>;

TEST(ConfigDefaults, MatchPySlowFast) {
  Config c;
  EXPECT_EQ(c.get<int>("DATA.NUM_FRAMES"), 8);
  EXPECT_EQ(c.get<std::string>("MODEL.ARCH"), "slowfast");
  EXPECT_EQ(c.get<std::vector<double>>("DATA.MEAN"), (std::vector<double>{0.45, 0.45, 0.45}));
  EXPECT_EQ(c.get<IntLists>("RESNET.SPATIAL_STRIDES"), (IntLists{{1}, {2}, {2}, {2}}));
  EXPECT_EQ(c.get<std::string>("NONLOCAL.INSTANTIATION"), "dot_product");
  EXPECT_FALSE(c.get<bool>("DETECTION.ENABLE"));
}

TEST(ConfigFile, PySlowFastYamlWithLiteralsAndUnknownKeys) {
  const char* yaml = R"(
DATA:
  NUM_FRAMES: 16
  TRAIN_JITTER_SCALES: [256, 320]
  VID_EXT: .mp4
MODEL:
  ARCH: slow
  DROPOUT_RATE: 0.5
RESNET:
  SPATIAL_STRIDES: ((1,), (2,), (2,), (1,))
  NUM_BLOCK_TEMP_KERNEL: "[[3], [4], [6], [3]]"
SOLVER:
  WEIGHT_DECAY: 1e-4
NUMBER_CSV: 3
)";
  Config c = Config::fromYaml(yaml, {}, "test.yaml");
  EXPECT_EQ(c.get<int>("DATA.NUM_FRAMES"), 16);
  EXPECT_EQ(c.get<std::vector<int>>("DATA.TRAIN_JITTER_SCALES"), (std::vector<int>{256, 320}));
  EXPECT_EQ(c.get<std::string>("MODEL.ARCH"), "slow");
  EXPECT_EQ(c.get<IntLists>("RESNET.SPATIAL_STRIDES"), (IntLists{{1}, {2}, {2}, {1}}));
  EXPECT_EQ(c.get<IntLists>("RESNET.NUM_BLOCK_TEMP_KERNEL"), (IntLists{{3}, {4}, {6}, {3}}));
  EXPECT_DOUBLE_EQ(c.get<double>("SOLVER.WEIGHT_DECAY"), 1e-4);
  // Keys PySlowFast does not have: ignored, listed once each.
  EXPECT_EQ(c.ignoredKeys(), (std::vector<std::string>{"DATA.VID_EXT", "NUMBER_CSV"}));
  EXPECT_FALSE(c.has("NUMBER_CSV"));
  // Defaults for keys the file omits.
  EXPECT_EQ(c.get<int>("DATA.SAMPLING_RATE"), 8);
}

TEST(ConfigFile, TupleOfTriplesLikeMvitPooling) {
  Config c = Config::fromYaml("MVIT:\n  POOL_KVQ_KERNEL: (3, 3, 3)\n  DEPTH: 16\n");
  EXPECT_EQ(c.get<std::vector<int>>("MVIT.POOL_KVQ_KERNEL"), (std::vector<int>{3, 3, 3}));
}

TEST(ConfigOverrides, SetKeyValue) {
  Config c =
      Config::fromYaml("DATA:\n  NUM_FRAMES: 8\n",
                       {"DATA.NUM_FRAMES=32", "DATA.MEAN=[0.5, 0.4, 0.3]",
                        "RESNET.SPATIAL_STRIDES=((1,), (2,), (2,), (2,))", "MODEL.ARCH=i3d"});
  EXPECT_EQ(c.get<int>("DATA.NUM_FRAMES"), 32);
  EXPECT_EQ(c.get<std::vector<double>>("DATA.MEAN"), (std::vector<double>{0.5, 0.4, 0.3}));
  EXPECT_EQ(c.get<IntLists>("RESNET.SPATIAL_STRIDES"), (IntLists{{1}, {2}, {2}, {2}}));
  EXPECT_EQ(c.get<std::string>("MODEL.ARCH"), "i3d");
}

TEST(ConfigOverrides, UnknownKeyAndBadSyntaxAreErrors) {
  Config c;
  EXPECT_THROW(c.set("DATA.NUM_FRAME=3"), vidfeat::Error);
  EXPECT_THROW(c.set("DATA=3"), vidfeat::Error);
  EXPECT_THROW(c.set("no_equals_sign"), vidfeat::Error);
}

TEST(ConfigErrors, WrongTypeNamesTheKey) {
  Config c = Config::fromYaml("DATA:\n  NUM_FRAMES: eight\n");
  try {
    c.get<int>("DATA.NUM_FRAMES");
    FAIL() << "expected an error";
  } catch (const vidfeat::Error& e) {
    EXPECT_NE(std::string(e.what()).find("DATA.NUM_FRAMES"), std::string::npos);
  }
}

TEST(ConfigErrors, UnreadableFileNamesThePath) {
  vidfeat::testing::ScratchDir dir;
  auto p = dir / "broken.yaml";
  std::ofstream(p) << "DATA: [unclosed\n";
  try {
    Config::load(p.string());
    FAIL() << "expected an error";
  } catch (const vidfeat::InputError& e) {
    EXPECT_EQ(e.path(), p.string());
  }
  EXPECT_THROW(Config::load((dir / "missing.yaml").string()), vidfeat::InputError);
}

TEST(ConfigDump, RoundTrips) {
  Config c = Config::fromYaml("DATA:\n  NUM_FRAMES: 4\nRESNET:\n  DEPTH: 101\n");
  Config d = Config::fromYaml(c.dump());
  EXPECT_EQ(d.get<int>("DATA.NUM_FRAMES"), 4);
  EXPECT_EQ(d.get<int>("RESNET.DEPTH"), 101);
  EXPECT_TRUE(d.ignoredKeys().empty());
}

TEST(ConfigLiteral, PythonLiterals) {
  std::string y;
  ASSERT_TRUE(vidfeat::pythonLiteralToYaml("(2, 4, 4)", y));
  EXPECT_EQ(y, "[2, 4, 4]");
  ASSERT_TRUE(vidfeat::pythonLiteralToYaml("[[1, 2], (3,), []]", y));
  EXPECT_EQ(y, "[[1, 2], [3], []]");
  EXPECT_FALSE(vidfeat::pythonLiteralToYaml("softmax", y));
  EXPECT_FALSE(vidfeat::pythonLiteralToYaml("(1, 2", y));
}
