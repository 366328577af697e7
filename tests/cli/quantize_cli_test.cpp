// Bad tilescale quantize input: exit 2, a message naming the flag or the problem, and no bundle
// written.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>

namespace tilescale {
namespace {

namespace fs = std::filesystem;
const std::string kLenet = std::string(TILESCALE_SOURCE_DIR) + "/models/lenet5_mnist.onnx";
const std::string kConfigs = std::string(TILESCALE_SOURCE_DIR) + "/configs/";

struct CliResult {
  int code;
  std::string err;
};

CliResult run_cli(const std::string& args) {
  const std::string cmd = std::string(TILESCALE_BINARY) + " quantize " + args + " 2>&1 >/dev/null";
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf;
  while (fgets(buf.data(), buf.size(), p)) out += buf.data();
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

class QuantizeCliErrors : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(QuantizeCliErrors, ExitTwoNamesTheProblemAndWritesNoBundle) {
  const fs::path dir = fs::temp_directory_path() / ("ts_qerr_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const auto& [args, expect] = GetParam();
  // The fast search unless the case is about --search (given twice, boost would refuse it first).
  const std::string search = args.find("--search") == std::string::npos ? " --search minmax" : "";
  const CliResult r = run_cli("--model " + kLenet + " --dataset mnist" + search + " --out " +
                              dir.string() + " " + args);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find(expect), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir));
  for (const auto& e : fs::directory_iterator(fs::temp_directory_path()))
    EXPECT_EQ(e.path().filename().string().rfind(dir.filename().string() + ".tmp", 0),
              std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    BadInput, QuantizeCliErrors,
    ::testing::Values(
        std::make_pair("--granularity block:0x4", "--granularity"),
        std::make_pair("--granularity block:999x4", "larger than every layer"),
        std::make_pair("--granularity tiles",
                       "--granularity: unknown granularity 'tiles' (allowed: layer, "
                       "channel, block:BOxBI, mx:N, vsq:N, xbar:BOxR)"),
        std::make_pair("--granularity xbar", "--granularity: xbar needs a cim --arch"),
        std::make_pair("--granularity xbar --arch " + kConfigs + "sa8x8_ws.json",
                       "--granularity: xbar takes its crossbar from a cim --arch"),
        // lenet5's fc layers cut 16-channel blocks into 128-row crossbars.
        std::make_pair("--granularity block:16x16 --align strict --arch " + kConfigs +
                           "cim128_2b.json",
                       "--align strict: layer"),
        std::make_pair("--granularity xbar:48x128 --align strict --arch " + kConfigs +
                           "cim128_2b.json",
                       "split unevenly over crossbars of 64 channels"),
        std::make_pair("--align strict", "--align: needs --arch"),
        std::make_pair("--arch " + kConfigs + "cim128_2b.json --adc-search maybe", "--adc-search"),
        std::make_pair("--arch " + kConfigs + "cim128_2b.json --abits 32",
                       "--arch: the ADC-aware search needs integer activations"),
        std::make_pair("--wbits 9", "--wbits"), std::make_pair("--wbits 1", "--wbits"),
        std::make_pair("--abits 3", "--abits"),
        std::make_pair("--calib 0", "calibration set is empty"),
        std::make_pair("--reorder shuffle",
                       "--reorder: unknown reorder method 'shuffle' (allowed: none, "
                       "sort, kmeans)"),
        std::make_pair("--search best",
                       "--search: unknown search method 'best' (allowed: minmax, "
                       "wmse, output)"),
        std::make_pair("--metric l1", "--metric: unknown search metric 'l1' (allowed: l2, cosine)"),
        std::make_pair("--calib-input fake",
                       "--calib-input: unknown calibration input 'fake' (allowed: "
                       "float, quantized)"),
        std::make_pair("--limit 70000", "--limit")));

}  // namespace
}  // namespace tilescale
