// Checkpoint readers: format detection, SHA-256, the three formats against PySlowFast's own
// features (tests/fixtures, made by tools/fixtures/make_fixtures.py), strict loading, and a hostile
// pickle.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <fstream>
#include <map>

#include "../../src/model/checkpoint/pickle_reader.h"
#include "checkpoint/state_dict.h"
#include "networks/video_net.h"
#include "test_support.h"
#include "vidfeat/common/error.h"
#include "vidfeat/config/config.h"
#include "vidfeat/model/checkpoint.h"
#include "vidfeat/model/feature_model.h"

using namespace vidfeat;
namespace fs = std::filesystem;

namespace {

fs::path fixtureDir() { return vidfeat::testing::sourceDir() / "tests" / "fixtures"; }

struct Fixture {
  std::string name, config;
  std::vector<std::string> overrides;
  int64_t featureDim = 0;
  std::map<std::string, std::string> files;  // format -> file name
};

// fixtures.json is JSON, which yaml-cpp reads as YAML.
std::vector<Fixture> fixtures() {
  std::vector<Fixture> out;
  YAML::Node root = YAML::LoadFile((fixtureDir() / "fixtures.json").string());
  for (const auto& f : root["fixtures"]) {
    Fixture x;
    x.name = f["name"].as<std::string>();
    x.config = f["config"].as<std::string>();
    x.overrides = f["overrides"].as<std::vector<std::string>>();
    x.featureDim = f["feature_dim"].as<int64_t>();
    for (const auto& kv : f["files"])
      x.files[kv.first.as<std::string>()] = kv.second.as<std::string>();
    out.push_back(x);
  }
  return out;
}

Fixture fixture(const std::string& name) {
  for (auto& f : fixtures()) {
    if (f.name == name) return f;
  }
  throw std::runtime_error("no fixture " + name);
}

Config fixtureConfig(const Fixture& f) {
  return Config::load((vidfeat::testing::sourceDir() / f.config).string(), f.overrides);
}

std::string writeBytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
  return path.string();
}

std::string readBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

template <typename F>
std::string errorOf(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// The ResNet-family fixtures whose modules exist in this build.
const char* kResNetFixtures[] = {"C2D_8x8_R50", "SLOW_8x8_R50", "I3D_8x8_R50"};

}  // namespace

TEST(Checkpoint, FormatIsDetectedFromBytesNotExtension) {
  vidfeat::testing::ScratchDir dir;
  const auto fx = fixture("C2D_8x8_R50");
  EXPECT_EQ(detectCheckpointFormat((fixtureDir() / fx.files.at("pyth")).string()),
            CheckpointFormat::TorchZip);
  EXPECT_EQ(detectCheckpointFormat((fixtureDir() / fx.files.at("legacy")).string()),
            CheckpointFormat::TorchLegacy);
  EXPECT_EQ(detectCheckpointFormat((fixtureDir() / fx.files.at("caffe2")).string()),
            CheckpointFormat::Caffe2Pickle);
  // A Caffe2 pickle named .pyth is still a Caffe2 pickle.
  const auto renamed =
      writeBytes(dir / "weights.pyth", readBytes(fixtureDir() / fx.files.at("caffe2")));
  EXPECT_EQ(detectCheckpointFormat(renamed), CheckpointFormat::Caffe2Pickle);
  const auto text = writeBytes(dir / "notes.pkl", "model: slow\n");
  const std::string err = errorOf([&] { detectCheckpointFormat(text); });
  EXPECT_NE(err.find("notes.pkl"), std::string::npos) << err;
  EXPECT_NE(err.find("not a checkpoint"), std::string::npos) << err;
  EXPECT_THROW(detectCheckpointFormat((dir / "absent.pyth").string()), InputError);
  EXPECT_THROW(detectCheckpointFormat(writeBytes(dir / "empty.pyth", "")), InputError);
}

TEST(Checkpoint, Sha256KnownVectors) {
  EXPECT_EQ(sha256Hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256Hex("abc", 3),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT_EQ(sha256Hex(two.data(), two.size()),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const std::string million(1000000, 'a');
  EXPECT_EQ(sha256Hex(million.data(), million.size()),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // Against sha256sum on a real file (block boundaries across the 64 KiB read buffer).
  const auto file = fixtureDir() / fixture("C2D_8x8_R50").files.at("pyth");
  FILE* p = popen(("sha256sum '" + file.string() + "'").c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[65] = {};
  ASSERT_EQ(fread(buf, 1, 64, p), 64u);
  pclose(p);
  EXPECT_EQ(sha256File(file.string()), std::string(buf));
}

TEST(Checkpoint, Caffe2NamesConvertAsPySlowFast) {
  using model::caffe2ToPySlowFastName;
  EXPECT_EQ(caffe2ToPySlowFastName("conv1_w"), "s1.pathway0_stem.conv.weight");
  EXPECT_EQ(caffe2ToPySlowFastName("res_conv1_bn_riv"), "s1.pathway0_stem.bn.running_var");
  EXPECT_EQ(caffe2ToPySlowFastName("res4_5_branch2c_bn_s"), "s4.pathway0_res5.branch2.c_bn.weight");
  EXPECT_EQ(caffe2ToPySlowFastName("res2_0_branch1_bn_rm"),
            "s2.pathway0_res0.branch1_bn.running_mean");
  EXPECT_EQ(caffe2ToPySlowFastName("t_res3_1_branch2b_w"), "s3.pathway1_res1.branch2.b.weight");
  EXPECT_EQ(caffe2ToPySlowFastName("t_pool1_subsample_bn_b"), "s1_fuse.bn.bias");
  EXPECT_EQ(caffe2ToPySlowFastName("t_res4_5_branch2c_bn_subsample_w"), "s4_fuse.conv_f2s.weight");
  EXPECT_EQ(caffe2ToPySlowFastName("nonlocal_conv3_1_theta_b"),
            "s3.pathway0_nonlocal1.conv_theta.bias");
  EXPECT_EQ(caffe2ToPySlowFastName("nonlocal_conv4_3_bn_s"), "s4.pathway0_nonlocal3.bn.weight");
  EXPECT_EQ(caffe2ToPySlowFastName("res3_2_branch2b_bn_fc1_w"),
            "s3.pathway0_res2.branch2.se.fc1.weight");
  EXPECT_EQ(caffe2ToPySlowFastName("conv1_xy_w"), "s1.pathway0_stem.conv_xy.weight");
  EXPECT_EQ(caffe2ToPySlowFastName("conv_5_bn_riv"), "head.conv_5_bn.running_var");
  EXPECT_EQ(caffe2ToPySlowFastName("lin_5_w"), "head.lin_5.weight");
  EXPECT_EQ(caffe2ToPySlowFastName("pred_b"), "head.projection.bias");
}

// The acceptance core: each format of each ResNet-family fixture gives PySlowFast's feature.
TEST(Checkpoint, EveryFormatMatchesPySlowFastFeature) {
  for (const char* name : kResNetFixtures) {
    const Fixture fx = fixture(name);
    for (const char* format : {"pyth", "legacy", "caffe2"}) {
      SCOPED_TRACE(std::string(name) + " " + format);
      auto m = FeatureModel::build(fixtureConfig(fx));
      const auto path = (fixtureDir() / fx.files.at(format)).string();
      const auto report =
          m->loadCheckpoint(path, std::string(format) == "caffe2" ? "caffe2" : "pytorch");
      EXPECT_EQ(report.sha256, sha256File(path));
      EXPECT_TRUE(report.absentHeadKeys.empty());
      EXPECT_GT(report.tensorsLoaded, 100);
      const auto v = m->verifyIo((fixtureDir() / fx.files.at("io")).string());
      EXPECT_EQ(v.featureDim, fx.featureDim);
      EXPECT_LE(v.relativeError, 1e-4) << name << " " << format;
      std::printf("[parity] %-20s %-7s rel.err %.3g  forward %.3f s\n", name, format,
                  v.relativeError, v.forwardSeconds);
    }
  }
}

TEST(Checkpoint, Caffe2TrainingBlobsAreSkippedAndFcReshaped) {
  const Fixture fx = fixture("C2D_8x8_R50");
  model::StateDict dict = model::readStateDict((fixtureDir() / fx.files.at("caffe2")).string());
  bool sawLr = false;
  for (auto& [k, t] : dict) sawLr |= k == "lr";
  EXPECT_TRUE(sawLr);  // present in the file (make_fixtures adds lr, model_iter, a momentum)
  auto net = model::buildVideoNet(fixtureConfig(fx));
  // A 2-D projection stored as 4-D... and a conv weight stored without its trailing 1s.
  for (auto& [k, t] : dict) {
    if (k == "s2.pathway0_res0.branch1.weight") t = t.reshape({t.size(0), t.size(1)});
  }
  std::vector<std::string> notes;
  model::conformCaffe2(dict, *net, &notes);
  for (auto& [k, t] : dict) EXPECT_NE(k, "lr");
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("s2.pathway0_res0.branch1.weight"), std::string::npos);
  EXPECT_GT(model::applyStateDict(*net, dict).loaded, 100);
}

TEST(Checkpoint, StrictLoadListsEveryProblem) {
  const Fixture fx = fixture("SLOW_8x8_R50");
  const model::StateDict good = model::readStateDict((fixtureDir() / fx.files.at("pyth")).string());
  auto net = model::buildVideoNet(fixtureConfig(fx));

  model::StateDict bad;
  for (const auto& [k, t] : good) {
    if (k == "s2.pathway0_res0.branch2.a.weight" ||
        k == "s3.pathway0_res1.branch2.b_bn.running_var")
      continue;  // missing
    if (k == "s4.pathway0_res0.branch1.weight") {
      bad.emplace_back(k, t.narrow(0, 0, t.size(0) - 1));  // mis-shaped
      continue;
    }
    bad.emplace_back(k, t);
  }
  bad.emplace_back("s6.pathway0_res0.branch2.a.weight", torch::zeros({2, 2}));  // unexpected
  const std::string err = errorOf([&] { model::applyStateDict(*net, bad); });
  EXPECT_NE(err.find("missing keys (2)"), std::string::npos) << err;
  EXPECT_NE(err.find("s2.pathway0_res0.branch2.a.weight"), std::string::npos) << err;
  EXPECT_NE(err.find("s3.pathway0_res1.branch2.b_bn.running_var"), std::string::npos) << err;
  EXPECT_NE(err.find("unexpected keys (1)"), std::string::npos) << err;
  EXPECT_NE(err.find("s6.pathway0_res0.branch2.a.weight"), std::string::npos) << err;
  EXPECT_NE(err.find("shape mismatches (1)"), std::string::npos) << err;
  EXPECT_NE(err.find("s4.pathway0_res0.branch1.weight"), std::string::npos) << err;

  // Without the classifier: loads, and says so.
  model::StateDict headless;
  for (const auto& [k, t] : good) {
    if (!model::isHeadClassifierKey(k)) headless.emplace_back(k, t);
  }
  const auto r = model::applyStateDict(*net, headless);
  EXPECT_EQ(r.absentHeadKeys,
            (std::vector<std::string>{"head.projection.bias", "head.projection.weight"}));
}

TEST(Checkpoint, TsmStyleAndBareStateDicts) {
  // {"state_dict": {"module.<key>": ...}, "epoch": 3} (zip) and a bare OrderedDict (legacy).
  for (const char* file : {"tsm_style.pth", "bare_state.legacy.pth"}) {
    SCOPED_TRACE(file);
    const auto dict = model::readStateDict((fixtureDir() / file).string());
    ASSERT_EQ(dict.size(), 3u);
    EXPECT_EQ(dict[0].first, "conv.weight");
    EXPECT_EQ(dict[0].second.sizes(), (std::vector<int64_t>{4, 3, 1, 1, 1}));
    EXPECT_EQ(dict[2].first, "bn.num_batches_tracked");
    EXPECT_EQ(dict[2].second.item<int64_t>(), 3);
  }
  // The io file is a dict of neither kind.
  const Fixture fx = fixture("C2D_8x8_R50");
  const std::string err =
      errorOf([&] { model::readStateDict((fixtureDir() / fx.files.at("io")).string()); });
  EXPECT_NE(err.find("not a bare state dict"), std::string::npos) << err;
}

TEST(Checkpoint, UnknownGlobalIsRejectedNotExecuted) {
  vidfeat::testing::ScratchDir dir;
  const fs::path marker = dir / "pwned";
  // pickle.dumps(os.system("touch <marker>")) by hand: GLOBAL posix system, the command, REDUCE.
  const std::string cmd = "touch " + marker.string();
  std::string pkl =
      "\x80\x02"
      "cposix\nsystem\nq\x00X";
  const uint32_t n = uint32_t(cmd.size());
  pkl += std::string(reinterpret_cast<const char*>(&n), 4) + cmd + "\x85R.";
  const auto path = writeBytes(dir / "evil.pkl", pkl);
  const std::string err = errorOf([&] { model::readStateDict(path); });
  EXPECT_NE(err.find("posix.system"), std::string::npos) << err;
  EXPECT_NE(err.find("nothing was executed"), std::string::npos) << err;
  EXPECT_NE(err.find("evil.pkl"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(marker));
  // builtins.eval via STACK_GLOBAL (protocol 4 spelling) too.
  const std::string pkl4 = std::string(
      "\x80\x04\x8c\x08"
      "builtins\x8c\x04"
      "eval\x93)R.",
      22);
  EXPECT_NE(errorOf([&] {
              ckpt::parsePickle(reinterpret_cast<const uint8_t*>(pkl4.data()), pkl4.size());
            }).find("builtins.eval"),
            std::string::npos);
  // An opcode no checkpoint uses (INST, protocol 0) is named.
  const std::string inst = "\x80\x02i__main__\nX\n.";
  EXPECT_NE(errorOf([&] {
              ckpt::parsePickle(reinterpret_cast<const uint8_t*>(inst.data()), inst.size());
            }).find("opcode 'i'"),
            std::string::npos);
}

TEST(Checkpoint, Python3Protocol2NumpyPickleReads) {
  // Python 3's pickle.dumps({"blobs": {"pred_w": np.arange(6, dtype=np.float32).reshape(2, 3)}},
  // 2): the data goes through _codecs.encode; tests/fuzz/corpus holds the same bytes.
  const std::string bytes =
      readBytes(vidfeat::testing::sourceDir() / "tests" / "fuzz" / "corpus" / "py3_numpy.pkl");
  ASSERT_FALSE(bytes.empty());
  auto tree = ckpt::parsePickle(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  const ckpt::PyValue* blobs = ckpt::dictGet(*tree.root(), "blobs");
  ASSERT_NE(blobs, nullptr);
  const ckpt::PyValue* w = ckpt::dictGet(*blobs, "pred_w");
  ASSERT_NE(w, nullptr);
  const auto a = ckpt::ndArray(*w);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  float v[6];
  std::memcpy(v, a.data->data(), sizeof v);
  EXPECT_EQ(v[5], 5.0f);
}

TEST(Checkpoint, TruncatedFilesGiveClearErrors) {
  vidfeat::testing::ScratchDir dir;
  const Fixture fx = fixture("C2D_8x8_R50");
  for (const char* format : {"pyth", "legacy", "caffe2"}) {
    const std::string bytes = readBytes(fixtureDir() / fx.files.at(format));
    for (size_t cut : {bytes.size() / 2, bytes.size() - 3, size_t(40)}) {
      const auto path = writeBytes(dir / (std::string("cut.") + format), bytes.substr(0, cut));
      const std::string err = errorOf([&] { model::readStateDict(path); });
      EXPECT_NE(err.find("cut."), std::string::npos) << format << " cut at " << cut << ": " << err;
      EXPECT_FALSE(err.empty()) << format << " cut at " << cut;
    }
  }
}

TEST(Checkpoint, CheckpointTypeMismatchStillLoadsWhatTheBytesSay) {
  const Fixture fx = fixture("C2D_8x8_R50");
  auto m = FeatureModel::build(fixtureConfig(fx));
  const auto r = m->loadCheckpoint((fixtureDir() / fx.files.at("caffe2")).string(), "pytorch");
  EXPECT_EQ(r.format, CheckpointFormat::Caffe2Pickle);
  EXPECT_LE(m->verifyIo((fixtureDir() / fx.files.at("io")).string()).relativeError, 1e-4);
  EXPECT_THROW(m->loadCheckpoint((fixtureDir() / fx.files.at("pyth")).string(), "tensorflow"),
               Error);
}

// Fixtures of models whose modules arrive with the SlowFast/X3D/non-local work: loaded and compared
// when this build has them, skipped (not failed) otherwise.
TEST(Checkpoint, OtherZooFixturesWhenTheirModulesExist) {
  for (const auto& fx : fixtures()) {
    bool known = false;
    for (const char* n : kResNetFixtures) known |= fx.name == n;
    if (known) continue;
    std::unique_ptr<FeatureModel> m;
    try {
      m = FeatureModel::build(fixtureConfig(fx));
    } catch (const Error& e) {
      std::printf("[parity] %-36s skipped: %s\n", fx.name.c_str(), e.what());
      continue;
    }
    for (const auto& [format, file] : fx.files) {
      if (format == "io") continue;
      SCOPED_TRACE(fx.name + " " + format);
      m->loadCheckpoint((fixtureDir() / file).string(), format == "caffe2" ? "caffe2" : "pytorch");
      const auto v = m->verifyIo((fixtureDir() / fx.files.at("io")).string());
      EXPECT_LE(v.relativeError, 1e-4);
      std::printf("[parity] %-36s %-7s rel.err %.3g\n", fx.name.c_str(), format.c_str(),
                  v.relativeError);
    }
  }
}
