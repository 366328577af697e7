// Fuzz findings stay fixed: each crash input the fuzzers saved (tests/fuzz_regressions/<target>/)
// is refused with an InputError, and each committed seed (fuzz/corpus/<target>/) loads or is
// refused with an InputError, when replayed through the entry points the fuzz targets use
// (fuzz/fuzz_inputs.h). A crash, sanitizer report or other exception here is the bug come back.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "fuzz_inputs.h"
#include "support/expect_input_error.h"
#include "support/test_files.h"
#include "tilescale/core/atomic_file.h"
#include "tilescale/core/dataset.h"
#include "tilescale/core/error.h"
#include "tilescale/core/sha256.h"
#include "tilescale/model/onnx_import.h"
#include "tilescale/quant/bundle.h"
#include "tilescale/quant/quantize.h"

namespace tilescale {
namespace {

namespace fs = std::filesystem;

const std::string kSourceDir = TILESCALE_SOURCE_DIR;

// The regular files of dir, sorted; none if dir does not exist.
std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file()) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// The template bundle fuzz_bundle and fuzz_bundle_blob start from, made as scripts/fuzz.sh makes
// it: `tilescale quantize --model models/lenet5_mnist.onnx --dataset mnist --search minmax
// --calib 8` (defaults otherwise), so a saved manifest replays against the same model and blobs.
class BundleTemplate {
 public:
  static const BundleTemplate& get() {
    static const std::unique_ptr<BundleTemplate> t(new BundleTemplate());
    return *t;
  }
  const std::string& dir() const { return dir_; }
  const fuzz::BundleTemplate& loaded() const { return loaded_; }

 private:
  BundleTemplate() {
    dir_ = tmp_.file("template");
    const std::string model = kSourceDir + "/models/lenet5_mnist.onnx";
    const std::string onnx = read_file(model);
    quant::QuantOptions o;
    o.search = quant::SearchMethod::Minmax;
    o.calib_images = 8;
    quant::QuantizedModel m = quant::quantize(model::import_onnx_bytes(onnx, model), o,
                                              load_named("mnist", "train", default_data_dir()));
    m.model_sha256 = sha256_hex(onnx);
    quant::write_bundle(m, onnx, dir_);
    loaded_ = fuzz::load_bundle_template(dir_);
  }
  test::TempDir tmp_;
  std::string dir_;
  fuzz::BundleTemplate loaded_;
};

// One fuzz target: its name (the folder of its files) and how it replays one input in a scratch
// folder.
struct Target {
  std::string name;
  std::function<void(const std::string& bytes, const std::string& scratch)> run;
  // False for fuzz_bundle: its seed manifest names the SHA-256 of the template's blobs, so it stops
  // loading (with an InputError) whenever the quantizer's output changes, which is no bug.
  bool seeds_must_load = true;
  // The repo's own files scripts/fuzz.sh adds to the committed seeds: a folder and a file suffix.
  std::string extra_seeds_dir, extra_seeds_suffix;
};

// gtest names a parameter in test lists and failures by this (else it dumps the struct's bytes).
void PrintTo(const Target& t, std::ostream* os) { *os << t.name; }

const uint8_t* bytes_of(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

const std::vector<Target>& targets() {
  static const std::vector<Target> t = {
      {"fuzz_onnx",
       [](const std::string& b, const std::string&) { fuzz::onnx_input(bytes_of(b), b.size()); },
       true, "models", ".onnx"},
      {"fuzz_idx",
       [](const std::string& b, const std::string& dir) {
         fuzz::idx_input(bytes_of(b), b.size(), dir);
       },
       true, "", ""},
      {"fuzz_cifar",
       [](const std::string& b, const std::string& dir) {
         fuzz::cifar_input(bytes_of(b), b.size(), dir);
       },
       true, "", ""},
      {"fuzz_npy",
       [](const std::string& b, const std::string& dir) {
         fuzz::npy_input(bytes_of(b), b.size(), dir);
       },
       true, "models/fixtures", ".npy"},
      {"fuzz_arch",
       [](const std::string& b, const std::string& dir) {
         fuzz::arch_input(bytes_of(b), b.size(), dir);
       },
       true, "configs", ".json"},
      {"fuzz_scalesim",
       [](const std::string& b, const std::string& dir) {
         fuzz::scalesim_input(bytes_of(b), b.size(), dir);
       },
       true, "", ""},
      {"fuzz_topology",
       [](const std::string& b, const std::string& dir) {
         fuzz::topology_input(bytes_of(b), b.size(), dir);
       },
       true, "", ""},
      {"fuzz_bundle",
       [](const std::string& b, const std::string& dir) {
         fuzz::copy_bundle(BundleTemplate::get().dir(), dir + "/bundle");
         fuzz::bundle_manifest_input(bytes_of(b), b.size(), dir + "/bundle");
       },
       false, "", ""},
      {"fuzz_bundle_blob",
       [](const std::string& b, const std::string& dir) {
         fuzz::copy_bundle(BundleTemplate::get().dir(), dir + "/bundle");
         fuzz::bundle_blob_input(bytes_of(b), b.size(), dir + "/bundle",
                                 BundleTemplate::get().loaded());
       },
       true, "", ""},
  };
  return t;
}

class FuzzInputs : public ::testing::TestWithParam<Target> {};

TEST_P(FuzzInputs, SavedCrashInputsAreRefusedWithInputError) {
  const std::vector<std::string> files =
      files_in(kSourceDir + "/tests/fuzz_regressions/" + GetParam().name);
  if (files.empty()) GTEST_SKIP() << "no crash inputs saved for " << GetParam().name;
  for (const std::string& path : files) {
    SCOPED_TRACE(path);
    test::TempDir scratch;
    const std::string bytes = read_file(path);
    const std::string msg =
        test::input_error_message([&] { GetParam().run(bytes, scratch.path()); });
    EXPECT_FALSE(msg.empty()) << "expected an InputError naming the file";
  }
}

TEST_P(FuzzInputs, SeedCorpusLoadsOrIsRefusedWithInputError) {
  std::vector<std::string> files = files_in(kSourceDir + "/fuzz/corpus/" + GetParam().name);
  ASSERT_FALSE(files.empty()) << "no seed corpus for " << GetParam().name;
  if (!GetParam().extra_seeds_dir.empty()) {
    const std::string& suffix = GetParam().extra_seeds_suffix;
    for (const std::string& f : files_in(kSourceDir + "/" + GetParam().extra_seeds_dir))
      if (f.size() > suffix.size() &&
          f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0)
        files.push_back(f);
  }
  int loaded = 0;
  for (const std::string& path : files) {
    SCOPED_TRACE(path);
    test::TempDir scratch;
    const std::string bytes = read_file(path);
    try {
      GetParam().run(bytes, scratch.path());
      ++loaded;
    } catch (const InputError&) {
      // an expected rejection (seeds may be deliberately bad)
    } catch (const std::exception& e) {
      ADD_FAILURE() << "threw a non-InputError exception: " << e.what();
    }
  }
  std::printf("%s: %d of %zu seeds load\n", GetParam().name.c_str(), loaded, files.size());
  // The seeds exist to lead the fuzzer into the loader: at least one must load.
  if (GetParam().seeds_must_load) {
    EXPECT_GT(loaded, 0) << "no seed of " << GetParam().name << " loads";
  }
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzInputs, ::testing::ValuesIn(targets()),
                         [](const ::testing::TestParamInfo<Target>& p) { return p.param.name; });

}  // namespace
}  // namespace tilescale
