// import_onnx_bytes refuses malformed or unsupported models with a tilescale::InputError whose
// message starts with the source name and names the node and op type at fault.
#include <gtest/gtest.h>

#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "support/alloc_probe.h"
#include "support/onnx_builder.h"
#include "tilescale/core/error.h"
#include "tilescale/model/onnx_import.h"

namespace tilescale::quant {
namespace {

using test::attr_int;
using test::attr_ints;
using test::OnnxBuilder;

const std::string kSource = "bad.onnx";

// The InputError message of importing bytes, or "" after recording a failure.
std::string import_error(const std::string& bytes) {
  try {
    model::import_onnx_bytes(bytes, kSource);
  } catch (const InputError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-InputError exception: " << e.what();
    return {};
  }
  ADD_FAILURE() << "import succeeded; an InputError was expected";
  return {};
}

// The message starts with "<source>: " and contains every word.
void expect_input_error(const std::string& bytes, const std::vector<std::string>& words) {
  const std::string msg = import_error(bytes);
  if (msg.empty()) return;
  EXPECT_EQ(msg.rfind(kSource + ": ", 0), 0u) << "message does not start with the source: " << msg;
  for (const auto& w : words)
    EXPECT_NE(msg.find(w), std::string::npos) << "'" << w << "' missing from: " << msg;
}

// x [N,3,5,5] -> Conv(W [4,3,3,3], B) -> y: imports cleanly; each test breaks one thing.
OnnxBuilder conv_model(int64_t opset = 13) {
  OnnxBuilder b(opset);
  b.input("x", {3, 5, 5});
  b.initializer("W", {4, 3, 3, 3}, std::vector<float>(4 * 3 * 3 * 3, 0.1f));
  b.initializer("B", {4}, std::vector<float>(4, 0.0f));
  b.node("Conv", {"x", "W", "B"}, {"y"}, {}, "conv1");
  b.output("y");
  return b;
}

TEST(OnnxImportErrors, BaseModelImportsCleanly) {
  const model::Graph g = model::import_onnx_bytes(conv_model().bytes(), kSource);
  EXPECT_EQ(g.source, kSource);
  EXPECT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.output_value().shape, (std::vector<int64_t>{4, 3, 3}));
}

TEST(OnnxImportErrors, UnknownOpNamesSourceNodeAndOpType) {
  OnnxBuilder b = conv_model();
  b.graph().mutable_output()->Clear();
  b.node("FancyOp", {"y"}, {"z"}, {}, "mystery");
  b.output("z");
  const std::string msg = import_error(b.bytes());
  EXPECT_EQ(msg.rfind("bad.onnx: node 'mystery' (FancyOp): ", 0), 0u) << msg;
  EXPECT_NE(msg.find("unsupported operator type"), std::string::npos) << msg;
}

TEST(OnnxImportErrors, UnnamedUnknownOpIsLabelledByTypeAndIndex) {
  OnnxBuilder b = conv_model();
  b.graph().mutable_output()->Clear();
  b.node("FancyOp", {"y"}, {"z"});
  b.output("z");
  expect_input_error(b.bytes(), {"node 'FancyOp_1'", "(FancyOp)"});
}

TEST(OnnxImportErrors, Opset8And18AreRefusedNaming9To17) {
  expect_input_error(conv_model(8).bytes(), {"opset 8", "not supported", "9-17"});
  expect_input_error(conv_model(18).bytes(), {"opset 18", "not supported", "9-17"});
}

TEST(OnnxImportErrors, Opsets9And17AreAccepted) {
  EXPECT_EQ(model::import_onnx_bytes(conv_model(9).bytes(), kSource).opset, 9);
  EXPECT_EQ(model::import_onnx_bytes(conv_model(17).bytes(), kSource).opset, 17);
}

TEST(OnnxImportErrors, ModelWithoutOpsetIsRefused) {
  OnnxBuilder b = conv_model();
  b.model().clear_opset_import();
  expect_input_error(b.bytes(), {"no opset"});
}

TEST(OnnxImportErrors, EmptyBytesAreRefused) { expect_input_error("", {"empty"}); }

TEST(OnnxImportErrors, TruncatedBytesAreRefused) {
  const std::string bytes = conv_model().bytes();
  for (std::size_t keep : {bytes.size() / 2, bytes.size() - 1}) {
    SCOPED_TRACE("kept " + std::to_string(keep) + " of " + std::to_string(bytes.size()) + " bytes");
    expect_input_error(bytes.substr(0, keep), {"not a valid ONNX model", "truncated"});
  }
}

TEST(OnnxImportErrors, GarbageBytesAreRefused) {
  expect_input_error("this is certainly not a protobuf \xff\xff\xff\xff",
                     {"not a valid ONNX model"});
  expect_input_error(std::string(64, '\xff'), {"not a valid ONNX model"});
}

TEST(OnnxImportErrors, MissingConvWeightInitializerIsNamed) {
  OnnxBuilder b(13);
  b.input("x", {3, 5, 5});
  b.node("Conv", {"x", "W_nowhere"}, {"y"}, {}, "conv1");
  b.output("y");
  expect_input_error(b.bytes(), {"node 'conv1' (Conv)", "'W_nowhere'", "must be a constant"});
}

TEST(OnnxImportErrors, DynamicNonBatchInputDimIsRefused) {
  OnnxBuilder b(13);
  b.input_dims("x", {0, 3, 0, 5}, {"N", "", "H", ""});
  b.node("Relu", {"x"}, {"y"});
  b.output("y");
  expect_input_error(b.bytes(), {"input 'x'", "dynamic dimension 2", "'H'", "only the batch axis"});
}

TEST(OnnxImportErrors, ConvWeightChannelMismatchIsRefused) {
  OnnxBuilder b(13);
  b.input("x", {2, 5, 5});  // the weight expects 3 input channels
  b.initializer("W", {4, 3, 3, 3}, std::vector<float>(108, 0.1f));
  b.node("Conv", {"x", "W"}, {"y"}, {}, "conv1");
  b.output("y");
  expect_input_error(b.bytes(),
                     {"node 'conv1' (Conv)", "[4,3,3,3]", "does not fit an input of 2 channels"});
}

TEST(OnnxImportErrors, ConvGroupThatDoesNotDivideChannelsIsRefused) {
  OnnxBuilder b(13);
  b.input("x", {3, 5, 5});
  b.initializer("W", {4, 1, 3, 3}, std::vector<float>(36, 0.1f));
  b.node("Conv", {"x", "W"}, {"y"}, {attr_int("group", 2)}, "conv1");
  b.output("y");
  expect_input_error(b.bytes(), {"(Conv)", "group=2", "does not fit an input of 3 channels"});
}

TEST(OnnxImportErrors, GemmWeightFeatureMismatchIsRefused) {
  OnnxBuilder b(13);
  b.input("x", {6});
  b.initializer("B", {5, 4}, std::vector<float>(20, 0.1f));
  b.node("Gemm", {"x", "B"}, {"y"}, {}, "fc");
  b.output("y");
  expect_input_error(b.bytes(),
                     {"node 'fc' (Gemm)", "[5,4]", "does not fit an input of 6 features"});
}

TEST(OnnxImportErrors, RawDataSizeNotMatchingDimsIsRefused) {
  OnnxBuilder b = conv_model();
  b.graph().mutable_initializer(0)->mutable_raw_data()->resize(107 * 4);
  expect_input_error(b.bytes(), {"tensor 'W'", "428 bytes of raw data", "[4,3,3,3]", "needs 432"});
}

TEST(OnnxImportErrors, TypedDataCountNotMatchingDimsIsRefused) {
  OnnxBuilder b(13);
  b.input("x", {3, 5, 5});
  b.initializer("W", {4, 3, 3, 3}, std::vector<float>(100, 0.1f), /*typed=*/true);
  b.node("Conv", {"x", "W"}, {"y"});
  b.output("y");
  expect_input_error(b.bytes(), {"tensor 'W'", "holds 100 values", "needs 108"});
}

TEST(OnnxImportErrors, HundredGigabyteTensorIsRefusedBeforeAllocating) {
  const test::LargestAllocation probe;
  for (bool typed : {false, true}) {
    SCOPED_TRACE(typed ? "float_data" : "raw_data");
    OnnxBuilder b = conv_model();
    b.graph().clear_initializer();
    b.initializer("W", {100000, 100000, 10}, {1.0f, 2.0f}, typed);  // 1e11 floats = 400 GB claimed
    b.initializer("B", {4}, std::vector<float>(4, 0.0f));
    expect_input_error(b.bytes(), {"tensor 'W'", "refusing to allocate"});
  }
  {
    SCOPED_TRACE("Constant node");
    OnnxBuilder b(13);
    b.input("x", {3});
    auto& n = b.node("Constant", {}, {"k"});
    auto* a = n.add_attribute();
    a->set_name("value");
    a->set_type(onnx::AttributeProto::TENSOR);
    auto* t = a->mutable_t();
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : {100000, 100000, 10}) t->add_dims(d);
    t->set_raw_data(std::string(8, '\0'));
    b.node("Add", {"x", "k"}, {"y"});
    b.output("y");
    expect_input_error(b.bytes(), {"tensor 'k'", "refusing to allocate"});
  }
  EXPECT_LT(probe.bytes(), std::size_t{64} << 20)
      << "refusing a huge tensor must not allocate in proportion to its claim";
}

TEST(OnnxImportErrors, ReshapeChangingTheBatchAxisIsRefused) {
  for (const std::vector<int64_t>& target :
       {std::vector<int64_t>{2, -1}, std::vector<int64_t>{-1, 25}, std::vector<int64_t>{1, 75}}) {
    SCOPED_TRACE("target [" + std::to_string(target[0]) + "," + std::to_string(target[1]) + "]");
    OnnxBuilder b(13);
    b.input("x", {3, 5, 5});  // 75 elements per sample
    b.initializer_i64("shape", {2}, target);
    b.node("Reshape", {"x", "shape"}, {"y"}, {}, "reshape1");
    b.output("y");
    expect_input_error(b.bytes(), {"node 'reshape1' (Reshape)", "changes the batch axis"});
  }
}

TEST(OnnxImportErrors, ConcatOnTheBatchAxisIsRefused) {
  for (int64_t axis : {0, -4}) {
    SCOPED_TRACE("axis " + std::to_string(axis));
    OnnxBuilder b(13);
    b.input("x", {3, 5, 5});
    b.node("Relu", {"x"}, {"r"});
    b.node("Concat", {"x", "r"}, {"y"}, {attr_int("axis", axis)}, "cat");
    b.output("y");
    expect_input_error(b.bytes(), {"node 'cat' (Concat)", "batch axis"});
  }
}

TEST(OnnxImportErrors, PoolWindowLargerThanPaddedInputIsRefused) {
  OnnxBuilder b(13);
  b.input("x", {1, 3, 3});
  b.node("MaxPool", {"x"}, {"y"}, {attr_ints("kernel_shape", {5, 5})}, "pool");
  b.output("y");
  expect_input_error(b.bytes(), {"node 'pool' (MaxPool)", "larger than the padded input"});
}

TEST(OnnxImportErrors, MissingFileNamesThePath) {
  const std::string path = "/nonexistent/tilescale/model.onnx";
  try {
    model::import_onnx(path);
    ADD_FAILURE() << "import succeeded";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ": ", 0), 0u) << e.what();
  }
}

}  // namespace
}  // namespace tilescale::quant
