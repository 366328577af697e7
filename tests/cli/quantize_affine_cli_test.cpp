// tilescale quantize on models with constant elementwise ops after the first quantized tensor
// (tests/data/affine, made by make_affine_nets.py): unfolded BatchNormalization and constant
// Sub/Mul/Div/Add quantize, evaluate and export (onnx.checker-clean, and the exported file
// computes exactly the bundle's fake-quant logits); what has no integer form (a Div of two tensors,
// c / x) exits 2 naming the file and the node, with nothing written.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "study_cli.h"

namespace tilescale {
namespace {

namespace fs = std::filesystem;
using study::CliResult;
using study::run_cli;
using study::run_shell;
using study::ScratchDir;

const std::string kData = TILESCALE_AFFINE_DIR;  // generated at build time (tests/CMakeLists.txt)
const std::string kImages = " --images " + kData + "images.idx --labels " + kData + "labels.idx";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class QuantizeAffineCli : public ::testing::TestWithParam<std::string> {};

TEST_P(QuantizeAffineCli, QuantizesEvaluatesAndExportsTheFakeQuantPath) {
  const ScratchDir dir("affine_" + GetParam());
  fs::create_directories(dir.path);
  const std::string model = kData + GetParam() + ".onnx";
  const CliResult q = run_cli("quantize --model " + model + kImages +
                              " --granularity block:4x4 --wbits 4 --scale-bits 4 --calib 32"
                              " --search output --grid-points 10 --threads 1 --out " +
                              dir.file("b") + " --export-onnx " + dir.file("fake.onnx"));
  ASSERT_EQ(q.code, 0) << q.err;
  const CliResult check = run_shell(
      "/usr/bin/python3 -c \"import onnx, sys; m = onnx.load(sys.argv[1]); "
      "onnx.checker.check_model(m); assert max(o.version for o in m.opset_import) <= 17\" " +
      dir.file("fake.onnx"));
  EXPECT_EQ(check.code, 0) << check.err;
  const CliResult a = run_cli("eval --bundle " + dir.file("b") + " --mode fake" + kImages +
                              " --threads 1 --dump-logits " + dir.file("fake.npy"));
  ASSERT_EQ(a.code, 0) << a.err;
  const CliResult b = run_cli("eval --model " + dir.file("fake.onnx") + kImages +
                              " --threads 1 --dump-logits " + dir.file("export.npy"));
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(slurp(dir.file("fake.npy")), slurp(dir.file("export.npy")))
      << "the exported file computes the bundle's fake-quant logits";
  const CliResult i = run_cli("eval --bundle " + dir.file("b") + " --mode int" + kImages);
  EXPECT_EQ(i.code, 0) << i.err;
}

INSTANTIATE_TEST_SUITE_P(Generated, QuantizeAffineCli,
                         ::testing::Values("bn_unfused", "const_ops"));

TEST(QuantizeAffineCliErrors, NoIntegerFormExitsTwoNamingFileAndNodeAndWritesNothing) {
  for (const auto& [file, node] :
       {std::pair<std::string, std::string>{"div_by_tensor", "div_two_tensors"},
        {"reciprocal", "reciprocal"}}) {
    const ScratchDir dir("affine_err_" + file);
    const std::string model = kData + file + ".onnx";
    const CliResult r = run_cli("quantize --model " + model + kImages + " --search minmax --out " +
                                dir.file("b") + " --export-onnx " + dir.file("x.onnx"));
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_NE(r.err.find(model), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("'" + node + "'"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir.path)) << "nothing written";
  }
}

}  // namespace
}  // namespace tilescale
