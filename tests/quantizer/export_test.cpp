// Export of the fake-quant path as standard ONNX (quant/onnx_export.h) and the importer's QDQ
// pairs: the exported file re-imports into the same function, passes the ONNX checker and strict
// shape inference, carries the weights as int8 codes times their block steps, saturates narrow
// grids with an exact Clip, and is written atomically. The
// comparison with ONNX Runtime itself is the "ort" ctest (scripts/check_export_ort.sh).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "tilescale/core/atomic_file.h"
#include "tilescale/core/dataset.h"
#include "tilescale/core/error.h"
#include "tilescale/core/sha256.h"
#include "tilescale/model/float_executor.h"
#include "tilescale/model/onnx_import.h"
#include "tilescale/quant/bundle.h"
#include "tilescale/quant/fake_quant.h"
#include "tilescale/quant/onnx_export.h"
#include "tilescale/quant/quantize.h"

namespace tilescale::quant {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kLenet = std::string(TILESCALE_SOURCE_DIR) + "/models/lenet5_mnist.onnx";
constexpr int64_t kImages = 256;

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info->test_suite_name()) + "_" + info->name();
    std::replace(name.begin(), name.end(), '/', '_');
    path_ =
        fs::temp_directory_path() / ("tilescale_export_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::vector<std::string> entries() const {
    std::vector<std::string> r;
    for (const auto& e : fs::directory_iterator(path_)) r.push_back(e.path().filename().string());
    std::sort(r.begin(), r.end());
    return r;
  }

 private:
  fs::path path_;
};

struct Config {
  std::string name;
  std::string granularity;
  int w_bits, a_bits, first_last;
  ReorderMethod reorder;
  SearchMethod search;
};

std::string config_name(const ::testing::TestParamInfo<Config>& info) { return info.param.name; }
void PrintTo(const Config& c, std::ostream* os) { *os << c.name; }

// Quantizes LeNet-5 once per configuration (32 seeded calibration images).
const QuantizedModel& quantized(const Config& c) {
  static std::map<std::string, QuantizedModel> cache;
  auto it = cache.find(c.name);
  if (it != cache.end()) return it->second;
  QuantOptions o;
  o.granularity = Granularity::parse(c.granularity);
  o.w_bits = c.w_bits;
  o.a_bits = c.a_bits;
  o.first_last_bits = c.first_last;
  o.reorder = c.reorder;
  o.search = c.search;
  o.grid_points = 20;
  o.seed = 7;
  const Dataset train = load_named("mnist", "train", default_data_dir());
  QuantizedModel m = quantize(model::import_onnx(kLenet), o, train);
  m.model_sha256 = sha256_hex(read_file(kLenet));
  return cache.emplace(c.name, std::move(m)).first->second;
}

const Dataset& test_images() {
  static const Dataset ds = [] {
    Dataset d = load_named("mnist", "test", default_data_dir());
    d.truncate(kImages);
    return d;
  }();
  return ds;
}

std::vector<float> run(const model::Graph& g, const Dataset& ds) {
  std::vector<float> in(static_cast<std::size_t>(ds.count * ds.image_size()));
  ds.fill_batch(0, ds.count, in.data());
  std::vector<float> out(static_cast<std::size_t>(ds.count * g.output_value().size()));
  model::FloatExecutor(g).run(in.data(), ds.count, out.data());
  return out;
}

onnx::ModelProto parse(const std::string& bytes) {
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromString(bytes));
  return m;
}

const onnx::TensorProto* initializer(const onnx::GraphProto& g, const std::string& name) {
  for (const auto& t : g.initializer())
    if (t.name() == name) return &t;
  return nullptr;
}

float scalar_f32(const onnx::TensorProto* t) {
  EXPECT_NE(t, nullptr);
  if (!t) return NAN;
  EXPECT_EQ(t->data_type(), onnx::TensorProto::FLOAT);
  EXPECT_EQ(t->dims_size(), 0) << t->name() << " is not a scalar";
  float v = NAN;
  EXPECT_EQ(t->raw_data().size(), sizeof(float));
  std::memcpy(&v, t->raw_data().data(), sizeof(float));
  return v;
}

const onnx::NodeProto* consumer(const onnx::GraphProto& g, const std::string& tensor) {
  for (const auto& n : g.node())
    for (const auto& in : n.input())
      if (in == tensor) return &n;
  return nullptr;
}

class ExportLenet : public ::testing::TestWithParam<Config> {};

TEST_P(ExportLenet, ReimportedExportComputesTheFakeQuantGraphsLogits) {
  const QuantizedModel& m = quantized(GetParam());
  TempDir dir;
  const std::string path = dir.file("lenet.qdq.onnx");
  export_fake_quant_onnx(m, path);
  const model::Graph fq = make_fake_quant_graph(m);
  const model::Graph back = model::import_onnx(path);

  // One FakeQuant per grid, on the same steps and code ranges.
  std::vector<const model::Node*> want, got;
  for (const model::Node& n : fq.nodes)
    if (n.op == model::Op::FakeQuant) want.push_back(&n);
  for (const model::Node& n : back.nodes)
    if (n.op == model::Op::FakeQuant) got.push_back(&n);
  ASSERT_EQ(got.size(), want.size());
  ASSERT_GT(want.size(), 0u);
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i]->fq_step, want[i]->fq_step) << want[i]->name;
    EXPECT_EQ(got[i]->fq_lo, want[i]->fq_lo < 0 ? -128.0f : 0.0f) << want[i]->name;
  }

  const Dataset& ds = test_images();
  const std::vector<float> ref = run(fq, ds), out = run(back, ds);
  ASSERT_EQ(out.size(), ref.size());
  float max_abs = 0.0f;
  for (float v : ref) max_abs = std::max(max_abs, std::fabs(v));
  const int64_t classes = fq.output_value().size();
  int64_t same = 0;
  for (int64_t i = 0; i < ds.count; ++i) {
    for (int64_t c = 0; c < classes; ++c) {
      const float r = ref[i * classes + c], o = out[i * classes + c];
      ASSERT_LE(std::fabs(o - r), 1e-5f * std::max(std::fabs(r), 0.01f * max_abs))
          << "image " << i << " class " << c;
    }
    const float* a = &ref[i * classes];
    const float* b = &out[i * classes];
    same += (std::max_element(a, a + classes) - a) == (std::max_element(b, b + classes) - b);
  }
  EXPECT_EQ(same, ds.count) << "top-1 differs on " << ds.count - same << " of " << ds.count;
}

TEST_P(ExportLenet, PassesOnnxCheckerAndStrictShapeInference) {
  const QuantizedModel& m = quantized(GetParam());
  TempDir dir;
  const std::string path = dir.file("lenet.qdq.onnx");
  export_fake_quant_onnx(m, path);
  EXPECT_NO_THROW(onnx::checker::check_model(path));
  onnx::ModelProto model = parse(read_file(path));
  EXPECT_NO_THROW(onnx::checker::check_model(model));
  EXPECT_NO_THROW(onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(),
                                                     onnx::ShapeInferenceOptions(true, 1, false)));

  ASSERT_EQ(model.opset_import_size(), 1);
  EXPECT_EQ(model.opset_import(0).version(), 13);
  const auto& g = model.graph();
  ASSERT_EQ(g.input_size(), 1);
  EXPECT_EQ(g.input(0).name(), "input");
  const auto& in_shape = g.input(0).type().tensor_type().shape();
  ASSERT_EQ(in_shape.dim_size(), 4);
  EXPECT_EQ(in_shape.dim(0).dim_param(), "batch");
  EXPECT_EQ(in_shape.dim(1).dim_value(), 1);
  EXPECT_EQ(in_shape.dim(2).dim_value(), 28);
  EXPECT_EQ(in_shape.dim(3).dim_value(), 28);
  ASSERT_EQ(g.output_size(), 1);
  EXPECT_EQ(g.output(0).name(), "logits");
  const auto& out_shape = g.output(0).type().tensor_type().shape();
  ASSERT_EQ(out_shape.dim_size(), 2);
  EXPECT_EQ(out_shape.dim(0).dim_param(), "batch");
  EXPECT_EQ(out_shape.dim(1).dim_value(), 10);
  for (const auto& n : g.node())
    if (n.op_type() == "Gemm") {
      ASSERT_EQ(n.attribute_size(), 1);
      EXPECT_EQ(n.attribute(0).name(), "transB");
      EXPECT_EQ(n.attribute(0).i(), 1);
    }
}

TEST_P(ExportLenet, EveryGridIsAZeroPointQdqPairAndNarrowGridsEndInAnExactClip) {
  const QuantizedModel& m = quantized(GetParam());
  const model::Graph fq = make_fake_quant_graph(m);
  const onnx::ModelProto model = parse(fake_quant_onnx_bytes(m, "memory"));
  const auto& g = model.graph();
  std::vector<const model::Node*> grids;
  for (const model::Node& n : fq.nodes)
    if (n.op == model::Op::FakeQuant) grids.push_back(&n);
  std::size_t k = 0, clips = 0;
  for (const auto& q : g.node()) {
    if (q.op_type() != "QuantizeLinear") continue;
    ASSERT_LT(k, grids.size());
    const model::Node& want = *grids[k++];
    ASSERT_EQ(q.input_size(), 3);
    EXPECT_EQ(scalar_f32(initializer(g, q.input(1))), want.fq_step);
    const onnx::TensorProto* zp = initializer(g, q.input(2));
    ASSERT_NE(zp, nullptr);
    EXPECT_EQ(zp->data_type(), want.fq_lo < 0 ? onnx::TensorProto::INT8 : onnx::TensorProto::UINT8);
    EXPECT_EQ(zp->raw_data(), std::string(1, '\0')) << "zero point must be 0";
    const onnx::NodeProto* dq = consumer(g, q.output(0));
    ASSERT_NE(dq, nullptr);
    ASSERT_EQ(dq->op_type(), "DequantizeLinear");
    EXPECT_EQ(dq->input(1), q.input(1));
    EXPECT_EQ(dq->input(2), q.input(2));
    const bool narrow = want.fq_hi - want.fq_lo < 255.0f;
    const onnx::NodeProto* next = consumer(g, dq->output(0));
    if (!narrow) {
      if (next) {
        EXPECT_NE(next->op_type(), "Clip") << want.name << ": an 8-bit grid needs no Clip";
      }
      continue;
    }
    ++clips;
    ASSERT_NE(next, nullptr);
    ASSERT_EQ(next->op_type(), "Clip") << want.name << ": a narrow grid must saturate at its codes";
    EXPECT_EQ(scalar_f32(initializer(g, next->input(1))), want.fq_lo * want.fq_step);
    EXPECT_EQ(scalar_f32(initializer(g, next->input(2))), want.fq_hi * want.fq_step);
  }
  EXPECT_EQ(k, grids.size());
  const Config& c = GetParam();
  if (c.a_bits == 8 && c.first_last == 8) {
    EXPECT_EQ(clips, 0u);
  } else if (c.a_bits < 8 && c.first_last == 0) {
    EXPECT_EQ(clips, grids.size());
  }
}

// The weights reach ONNX as int8 codes -> DequantizeLinear(scale 1, zero point 0) -> Mul(steps),
// never as a float initializer: ONNX Runtime's QDQ transformers re-quantize a float weight next to
// a QDQ pair (docs/export.md). The codes are the bundle's and code * step is the realised weight.
TEST_P(ExportLenet, WeightsAreTheCodesTimesTheirBlockStepsNotFloatInitializers) {
  const QuantizedModel& m = quantized(GetParam());
  const onnx::ModelProto model = parse(fake_quant_onnx_bytes(m, "memory"));
  const auto& g = model.graph();
  auto producer = [&](const std::string& tensor) -> const onnx::NodeProto* {
    for (const auto& n : g.node())
      if (n.output(0) == tensor) return &n;
    return nullptr;
  };
  std::size_t layer = 0;
  for (const auto& n : g.node()) {
    if (n.op_type() != "Conv" && n.op_type() != "Gemm") continue;
    ASSERT_LT(layer, m.layers.size());
    const LayerQuant& lq = m.layers[layer++];
    EXPECT_EQ(initializer(g, n.input(1)), nullptr) << n.name() << ": float weight initializer";
    const onnx::NodeProto* mul = producer(n.input(1));
    ASSERT_NE(mul, nullptr) << n.name();
    ASSERT_EQ(mul->op_type(), "Mul") << n.name();
    const onnx::NodeProto* dq = producer(mul->input(0));
    ASSERT_NE(dq, nullptr) << n.name();
    ASSERT_EQ(dq->op_type(), "DequantizeLinear") << n.name();
    EXPECT_EQ(scalar_f32(initializer(g, dq->input(1))), 1.0f);
    const onnx::TensorProto* zp = initializer(g, dq->input(2));
    ASSERT_NE(zp, nullptr);
    EXPECT_EQ(zp->data_type(), onnx::TensorProto::INT8);
    EXPECT_EQ(zp->raw_data(), std::string(1, '\0'));
    const onnx::TensorProto* codes = initializer(g, dq->input(0));
    ASSERT_NE(codes, nullptr);
    EXPECT_EQ(codes->data_type(), onnx::TensorProto::INT8);
    EXPECT_EQ(codes->raw_data(), std::string(lq.q_weight.begin(), lq.q_weight.end())) << n.name();
    const onnx::TensorProto* step = initializer(g, mul->input(1));
    ASSERT_NE(step, nullptr);
    ASSERT_EQ(step->data_type(), onnx::TensorProto::FLOAT);
    std::vector<float> steps(step->raw_data().size() / sizeof(float));
    std::memcpy(steps.data(), step->raw_data().data(), step->raw_data().size());
    // Steps once per (output, input channel), broadcast over the window, or once per weight.
    const std::vector<float> want = realized_weight_step(m, lq);
    const std::size_t per = want.size() / steps.size();
    ASSERT_EQ(steps.size() * per, want.size());
    for (std::size_t i = 0; i < want.size(); ++i) ASSERT_EQ(steps[i / per], want[i]) << i;
    const std::vector<float> w = realized_weight(m, lq);
    for (std::size_t i = 0; i < w.size(); ++i)
      ASSERT_EQ(float(lq.q_weight[i]) * want[i], w[i]) << n.name() << " weight " << i;
  }
  EXPECT_EQ(layer, m.layers.size());
}

TEST_P(ExportLenet, SameModelGivesByteIdenticalFiles) {
  const QuantizedModel& m = quantized(GetParam());
  EXPECT_EQ(fake_quant_onnx_bytes(m, "a"), fake_quant_onnx_bytes(m, "b"));
}

INSTANTIATE_TEST_SUITE_P(Lenet, ExportLenet,
                         ::testing::Values(Config{"W4A8_block8x4_kmeans", "block:8x4", 4, 8, 8,
                                                  ReorderMethod::KMeans, SearchMethod::Output},
                                           Config{"W8A4_channel", "channel", 8, 4, 0,
                                                  ReorderMethod::None, SearchMethod::Minmax}),
                         config_name);

const Config kSmall{"W8A4_channel", "channel", 8, 4, 0, ReorderMethod::None, SearchMethod::Minmax};

TEST(ExportErrors, MissingDirectoryIsAnInputErrorNamingThePathAndWritesNothing) {
  TempDir dir;
  const std::string path = dir.file("no/such/dir/model.onnx");
  try {
    export_fake_quant_onnx(quantized(kSmall), path);
    ADD_FAILURE() << "did not throw";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), StartsWith(path + ": "));
  }
  EXPECT_TRUE(dir.entries().empty());
}

TEST(ExportErrors, TargetThatIsADirectoryFailsAndLeavesNoTemporaryFile) {
  TempDir dir;
  const std::string path = dir.file("model.onnx");
  fs::create_directories(fs::path(path) / "occupied");
  try {
    export_fake_quant_onnx(quantized(kSmall), path);
    ADD_FAILURE() << "did not throw";
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), StartsWith(path + ": "));
  }
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"model.onnx"});
  EXPECT_TRUE(fs::is_directory(path));
}

TEST(ExportErrors, ReplacesAnExistingFileWhole) {
  TempDir dir;
  const std::string path = dir.file("model.onnx");
  write_file_atomic(path, "old");
  export_fake_quant_onnx(quantized(kSmall), path);
  EXPECT_EQ(read_file(path), fake_quant_onnx_bytes(quantized(kSmall), path));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"model.onnx"});
}

// --- tilescale quantize --export-onnx
// -------------------------------------------------------------

int run_cli(const std::string& args, const std::string& log) {
  const int status =
      std::system((std::string(TILESCALE_BINARY) + " " + args + " >" + log + " 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(ExportCli, QuantizeWritesAnOnnxFileTheImporterReadsBack) {
  TempDir dir;
  const std::string onnx = dir.file("lenet.qdq.onnx");
  const std::string args = "quantize --model " + kLenet +
                           " --dataset mnist --granularity block:8x4" +
                           " --wbits 4 --first-last 8 --search minmax --threads 1 --out " +
                           dir.file("bundle") + " --export-onnx " + onnx;
  ASSERT_EQ(run_cli(args, dir.file("log")), 0) << read_file(dir.file("log"));
  EXPECT_THAT(read_file(dir.file("log")), HasSubstr(onnx));
  const model::Graph back = model::import_onnx(onnx);
  const model::Graph fq = make_fake_quant_graph(read_bundle(dir.file("bundle")));
  Dataset ds = test_images();
  ds.truncate(32);
  EXPECT_EQ(run(back, ds), run(fq, ds));
}

TEST(ExportCli, UnwritableExportPathExitsWithAnInputErrorNamingIt) {
  TempDir dir;
  const std::string onnx = dir.file("missing/lenet.qdq.onnx");
  const std::string args = "quantize --model " + kLenet +
                           " --dataset mnist --search minmax --threads 1" + " --out " +
                           dir.file("bundle") + " --export-onnx " + onnx;
  EXPECT_EQ(run_cli(args, dir.file("log")), kInputErrorExit);
  EXPECT_THAT(read_file(dir.file("log")), HasSubstr(onnx + ": "));
  EXPECT_FALSE(fs::exists(onnx));
}

// --- importing QDQ pairs
// --------------------------------------------------------------------------

// x [batch][4] -> QuantizeLinear(scale, zero point) -> DequantizeLinear(dq_scale, zero point) -> y,
// zp_type 0 for no zero point input.
struct QdqSpec {
  float scale = 0.5f;
  float dq_scale = 0.5f;
  int zp_type = onnx::TensorProto::UINT8;
  int zero = 0;
  bool q_read_twice = false;  // a second reader of the integer tensor
  bool dq_only = false;       // no QuantizeLinear at all
  int scale_len = 0;          // 0: scalar, else a per-axis vector of this length
};

std::string qdq_model(const QdqSpec& s) {
  onnx::ModelProto m;
  m.set_ir_version(7);
  m.add_opset_import()->set_version(13);
  auto* g = m.mutable_graph();
  auto* in = g->add_input();
  in->set_name("x");
  auto* tt = in->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  tt->mutable_shape()->add_dim()->set_dim_param("batch");
  tt->mutable_shape()->add_dim()->set_dim_value(4);
  g->add_output()->set_name("y");
  auto scale = [&](const std::string& name, float v) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    if (s.scale_len > 0) t->add_dims(s.scale_len);
    for (int i = 0; i < std::max(1, s.scale_len); ++i) t->add_float_data(v);
  };
  scale("s", s.scale);
  scale("s_dq", s.dq_scale);
  if (s.zp_type) {
    auto* t = g->add_initializer();
    t->set_name("z");
    t->set_data_type(s.zp_type);
    t->add_int32_data(s.zero);
  }
  auto node = [&](const std::string& type, std::vector<std::string> ins, const std::string& out) {
    auto* n = g->add_node();
    n->set_op_type(type);
    for (auto& i : ins) n->add_input(i);
    n->add_output(out);
  };
  const std::string zp = s.zp_type ? "z" : "";
  std::vector<std::string> q_in = {"x", "s"}, dq_in = {s.dq_only ? "x" : "q", "s_dq"};
  if (!zp.empty()) {
    q_in.push_back(zp);
    dq_in.push_back(zp);
  }
  if (!s.dq_only) node("QuantizeLinear", q_in, "q");
  node("DequantizeLinear", dq_in, "y");
  if (s.q_read_twice) {
    node("DequantizeLinear", dq_in, "y2");
    g->add_output()->set_name("y2");
  }
  std::string bytes;
  m.SerializeToString(&bytes);
  return bytes;
}

std::vector<float> run_tiny(const model::Graph& g, const std::vector<float>& x) {
  std::vector<float> y(x.size());
  model::FloatExecutor(g).run(x.data(), static_cast<int64_t>(x.size() / 4), y.data());
  return y;
}

TEST(ImportQdq, PairBecomesOneFakeQuantOverTheZeroPointTypesRange) {
  struct Case {
    int type, zero;
    float lo, hi;
  };
  for (const Case& c : {Case{0, 0, 0.0f, 255.0f}, Case{onnx::TensorProto::UINT8, 0, 0.0f, 255.0f},
                        Case{onnx::TensorProto::INT8, 0, -128.0f, 127.0f},
                        Case{onnx::TensorProto::INT8, 3, -131.0f, 124.0f},
                        Case{onnx::TensorProto::UINT8, 128, -128.0f, 127.0f}}) {
    QdqSpec s;
    s.zp_type = c.type;
    s.zero = c.zero;
    const model::Graph g = model::import_onnx_bytes(qdq_model(s), "tiny.onnx");
    ASSERT_EQ(g.nodes.size(), 1u) << "type " << c.type << " zero " << c.zero;
    const model::Node& n = g.nodes[0];
    EXPECT_EQ(n.op, model::Op::FakeQuant);
    EXPECT_EQ(n.fq_step, 0.5f);
    EXPECT_EQ(n.fq_lo, c.lo) << "type " << c.type << " zero " << c.zero;
    EXPECT_EQ(n.fq_hi, c.hi) << "type " << c.type << " zero " << c.zero;
    EXPECT_EQ(g.output, n.output);
  }
}

// The documented difference from ONNX: exact ties round half up (ONNX: half to even), saturation is
// the same. 1.25 / 0.5 = 2.5 -> 3 here, 2 in ONNX Runtime; -1.25 -> -2 in both.
TEST(ImportQdq, RoundsHalfUpAndSaturatesAtTheTypesCodes) {
  QdqSpec s;
  s.zp_type = onnx::TensorProto::INT8;
  const model::Graph g = model::import_onnx_bytes(qdq_model(s), "tiny.onnx");
  EXPECT_EQ(run_tiny(g, {1.25f, -1.25f, 1000.0f, -1000.0f}),
            (std::vector<float>{1.5f, -1.0f, 63.5f, -64.0f}));
  s.zp_type = onnx::TensorProto::UINT8;
  const model::Graph u = model::import_onnx_bytes(qdq_model(s), "tiny.onnx");
  EXPECT_EQ(run_tiny(u, {0.74f, -3.0f, 127.4f, 1000.0f}),
            (std::vector<float>{0.5f, 0.0f, 127.5f, 127.5f}));
}

TEST(ImportQdq, RejectsWhatIsNotOnePerTensorPair) {
  struct Case {
    const char* what;
    QdqSpec spec;
    const char* problem;
  };
  QdqSpec mismatch, twice, dq_only, per_axis, bad_scale;
  mismatch.dq_scale = 0.25f;
  twice.q_read_twice = true;
  dq_only.dq_only = true;
  per_axis.scale_len = 4;
  bad_scale.scale = bad_scale.dq_scale = 0.0f;
  for (const Case& c : {Case{"scale mismatch", mismatch, "differ from those of QuantizeLinear"},
                        Case{"two readers", twice, "exactly one DequantizeLinear"},
                        Case{"lone DequantizeLinear", dq_only, "QDQ pair"},
                        Case{"per-axis scale", per_axis, "per-tensor (scalar) scale"},
                        Case{"zero scale", bad_scale, "positive and finite"}}) {
    try {
      model::import_onnx_bytes(qdq_model(c.spec), "tiny.onnx");
      ADD_FAILURE() << c.what << ": did not throw";
    } catch (const InputError& e) {
      EXPECT_THAT(e.what(), StartsWith("tiny.onnx: ")) << c.what;
      EXPECT_THAT(e.what(), HasSubstr(c.problem)) << c.what;
    }
  }
}

// x [batch][2] -> Gemm(transB) with the weight DequantizeLinear(codes, 1, zero) -> Mul(steps).
std::string int_weight_model(int codes_type, const std::string& combine = "Mul") {
  onnx::ModelProto m;
  m.set_ir_version(7);
  m.add_opset_import()->set_version(13);
  auto* g = m.mutable_graph();
  auto* in = g->add_input();
  in->set_name("x");
  auto* tt = in->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  tt->mutable_shape()->add_dim()->set_dim_param("batch");
  tt->mutable_shape()->add_dim()->set_dim_value(2);
  g->add_output()->set_name("y");
  auto tensor = [&](const std::string& name, int type, std::vector<int64_t> dims,
                    const std::string& raw) {
    auto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(type);
    for (int64_t d : dims) t->add_dims(d);
    t->set_raw_data(raw);
  };
  const int8_t codes[4] = {-3, 1, 7, -8};
  tensor("codes", codes_type, {2, 2}, std::string(reinterpret_cast<const char*>(codes), 4));
  const float one = 1.0f, steps[2] = {0.1f, 0.3f}, bias[2] = {0.0f, 0.0f};
  tensor("one", onnx::TensorProto::FLOAT, {}, std::string(reinterpret_cast<const char*>(&one), 4));
  tensor("zero", onnx::TensorProto::INT8, {}, std::string(1, '\0'));
  tensor("steps", onnx::TensorProto::FLOAT, {2, 1},
         std::string(reinterpret_cast<const char*>(steps), 8));
  tensor("b", onnx::TensorProto::FLOAT, {2}, std::string(reinterpret_cast<const char*>(bias), 8));
  auto node = [&](const std::string& type, std::vector<std::string> ins, const std::string& out) {
    auto* n = g->add_node();
    n->set_op_type(type);
    n->set_name(out + "_node");
    for (auto& i : ins) n->add_input(i);
    n->add_output(out);
    return n;
  };
  node("DequantizeLinear", {"codes", "one", "zero"}, "codes_f");
  node(combine, {"codes_f", "steps"}, "w");
  auto* gemm = node("Gemm", {"x", "w", "b"}, "y");
  auto* a = gemm->add_attribute();
  a->set_name("transB");
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(1);
  std::string bytes;
  m.SerializeToString(&bytes);
  return bytes;
}

TEST(ImportIntegerWeights, DequantizedCodesTimesStepsFoldIntoTheFloat32Products) {
  const model::Graph g =
      model::import_onnx_bytes(int_weight_model(onnx::TensorProto::INT8), "w.onnx");
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op, model::Op::Gemm);
  EXPECT_EQ(g.nodes[0].weight.shape, (std::vector<int64_t>{2, 2}));
  // Row o is scaled by steps[o] (shape [2][1] broadcasts along the input axis).
  EXPECT_EQ(g.nodes[0].weight.data,
            (std::vector<float>{-3.0f * 0.1f, 1.0f * 0.1f, 7.0f * 0.3f, -8.0f * 0.3f}));
}

TEST(ImportIntegerWeights, RejectsOtherConstantArithmeticAndCodesOfAnotherType) {
  struct Case {
    const char* what;
    std::string bytes;
    const char* problem;
  };
  for (const Case& c :
       {Case{"Add of constants", int_weight_model(onnx::TensorProto::INT8, "Add"),
             "only a Mul of them is folded"},
        Case{"uint8 codes, int8 zero point", int_weight_model(onnx::TensorProto::UINT8),
             "of the zero point's type"}}) {
    try {
      model::import_onnx_bytes(c.bytes, "w.onnx");
      ADD_FAILURE() << c.what << ": did not throw";
    } catch (const InputError& e) {
      EXPECT_THAT(e.what(), StartsWith("w.onnx: ")) << c.what;
      EXPECT_THAT(e.what(), HasSubstr(c.problem)) << c.what;
    }
  }
}

}  // namespace
}  // namespace tilescale::quant
