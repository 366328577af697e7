// The scale search's options on small synthetic graphs (seeded, GraphBuilder): bias correction
// removes the mean output shift of weight quantization, the cosine metric and quantized-input
// calibration each change the search and win on what they optimise, and the weight grid's lower
// edge follows the bit width and is reported.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "graph_builder.h"
#include "random_images.h"
#include "tilescale/core/dataset.h"
#include "tilescale/model/float_executor.h"
#include "tilescale/quant/fake_quant.h"
#include "tilescale/quant/int_executor.h"
#include "tilescale/quant/quantize.h"

namespace tilescale::quant {
namespace {

using test::random_images;

std::vector<float> run(const model::Graph& g, const Dataset& ds) {
  std::vector<float> in(static_cast<std::size_t>(ds.count * ds.image_size()));
  ds.fill_batch(0, ds.count, in.data());
  std::vector<float> out(static_cast<std::size_t>(ds.count * g.output_value().size()));
  model::FloatExecutor(g).run(in.data(), ds.count, out.data());
  return out;
}

// One layer: the flattened image into a Gemm of 16 outputs (float logits).
model::Graph one_layer(uint64_t seed) {
  test::GraphBuilder b({3, 8, 8}, seed);
  return b.finish(b.gemm(b.flatten(b.input()), 16));
}

// Two layers, so that the second one's input carries the first one's quantization error.
model::Graph two_layers(uint64_t seed) {
  test::GraphBuilder b({3, 8, 8}, seed);
  const int h = b.relu(b.gemm(b.flatten(b.input()), 32));
  return b.finish(b.gemm(h, 10));
}

QuantOptions options(const char* granularity, int w_bits, SearchMethod search) {
  QuantOptions o;
  o.granularity = Granularity::parse(granularity);
  o.w_bits = w_bits;
  o.a_bits = 8;
  o.search = search;
  o.calib_images = 64;
  o.grid_points = 40;
  o.threads = 1;
  return o;
}

// Per output, the mean over images of (quantized - float) output; returned as their RMS.
double mean_shift_rms(const std::vector<float>& q, const std::vector<float>& f, int64_t images) {
  const int64_t outs = static_cast<int64_t>(q.size()) / images;
  double sum = 0.0;
  for (int64_t o = 0; o < outs; ++o) {
    double m = 0.0;
    for (int64_t i = 0; i < images; ++i) m += double(q[i * outs + o]) - f[i * outs + o];
    m /= static_cast<double>(images);
    sum += m * m;
  }
  return std::sqrt(sum / static_cast<double>(outs));
}

TEST(BiasCorrection, RemovesTheMeanOutputShiftOfWeightQuantizationOnASyntheticLayer) {
  const uint64_t seed = 31;
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  const model::Graph g = one_layer(seed);
  const Dataset calib = random_images(64, seed + 1), test = random_images(2000, seed + 2);
  const std::vector<float> ref = run(g, test);
  for (int bits : {2, 3}) {
    QuantOptions o = options("layer", bits, SearchMethod::Minmax);
    o.bias_correction = BiasCorrection::Off;
    const QuantizedModel plain = quantize(g, o, calib);
    o.bias_correction = BiasCorrection::On;
    const QuantizedModel corrected = quantize(g, o, calib);
    ASSERT_EQ(corrected.layers[0].bias_correction.size(), 16u);
    EXPECT_TRUE(plain.layers[0].bias_correction.empty());
    const double before = mean_shift_rms(run(make_fake_quant_graph(plain), test), ref, test.count);
    const double after =
        mean_shift_rms(run(make_fake_quant_graph(corrected), test), ref, test.count);
    std::printf("W%d: RMS of the per-output mean shift on 2000 unseen images %.4g -> %.4g\n", bits,
                before, after);
    // Weight quantization at 2-3 bits shifts the mean of a positive-input layer clearly; the
    // correction, measured on 64 calibration images, removes most of it on other images.
    EXPECT_GT(before, 0.05) << "W" << bits;
    EXPECT_LT(after, 0.2 * before) << "W" << bits;
  }
}

// L2 and cosine error of the outputs q against f.
struct Errors {
  double l2 = 0.0, cosine = 0.0;
};
Errors errors(const std::vector<float>& q, const std::vector<float>& f) {
  double e = 0.0, dot = 0.0, nq = 0.0, nf = 0.0;
  for (std::size_t i = 0; i < q.size(); ++i) {
    e += (double(q[i]) - f[i]) * (double(q[i]) - f[i]);
    dot += double(q[i]) * f[i];
    nq += double(q[i]) * q[i];
    nf += double(f[i]) * f[i];
  }
  return {e / static_cast<double>(q.size()), 1.0 - dot / std::sqrt(nq * nf)};
}

// The output search scores a layer by its metric on the calibration images; with the single
// layer's every position sampled (64 images, one position each), the fake-quant output on those
// images is what each metric scored. Each metric's result must win on its own metric and the two
// must differ: a search that ignored --metric would give one result for both. (Layer and channel
// granularity: with several blocks per output the coordinate descent can stop where the other
// metric's result beats it on either objective; measured with block:4x48 here.)
TEST(SearchMetric, CosineAndL2EachWinOnTheirOwnObjective) {
  const uint64_t seed = 32;
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  const model::Graph g = one_layer(seed);
  const Dataset calib = random_images(64, seed + 1);
  const std::vector<float> ref = run(g, calib);
  for (const char* granularity : {"layer", "channel"}) {
    QuantOptions o = options(granularity, 2, SearchMethod::Output);
    o.bias_correction = BiasCorrection::Off;  // the search's objective alone
    o.metric = SearchMetric::L2;
    const QuantizedModel l2 = quantize(g, o, calib);
    o.metric = SearchMetric::Cosine;
    const QuantizedModel cos = quantize(g, o, calib);
    EXPECT_NE(l2.layers[0].block_scale, cos.layers[0].block_scale) << granularity;
    const Errors by_l2 = errors(run(make_fake_quant_graph(l2), calib), ref);
    const Errors by_cos = errors(run(make_fake_quant_graph(cos), calib), ref);
    std::printf("%s: l2 search: mse %.5g, 1-cos %.5g; cosine search: mse %.5g, 1-cos %.5g\n",
                granularity, by_l2.l2, by_l2.cosine, by_cos.l2, by_cos.cosine);
    EXPECT_LT(by_l2.l2, by_cos.l2) << granularity;
    EXPECT_LT(by_cos.cosine, by_l2.cosine) << granularity;
  }
}

// --calib-input quantized searches the second layer on the first layer's quantized output, so it
// can compensate that layer's error: the network's output error on the calibration images drops,
// and the searched steps differ from the float-input search's.
TEST(CalibInput, QuantizedInputsCompensateTheLayersBefore) {
  const uint64_t seed = 33;
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  const model::Graph g = two_layers(seed);
  const Dataset calib = random_images(64, seed + 1);
  const std::vector<float> ref = run(g, calib);
  QuantOptions o = options("channel", 2, SearchMethod::Output);
  o.bias_correction = BiasCorrection::Off;
  o.calib_input = CalibInput::Float;
  const QuantizedModel flt = quantize(g, o, calib);
  o.calib_input = CalibInput::Quantized;
  const QuantizedModel qin = quantize(g, o, calib);
  EXPECT_EQ(flt.layers[0].block_scale, qin.layers[0].block_scale)
      << "the first layer sees the (quantized) network input either way";
  EXPECT_NE(flt.layers[1].block_scale, qin.layers[1].block_scale);
  const Errors e_flt = errors(run(make_fake_quant_graph(flt), calib), ref);
  const Errors e_qin = errors(run(make_fake_quant_graph(qin), calib), ref);
  std::printf("output mse: float-input calibration %.5g, quantized-input %.5g\n", e_flt.l2,
              e_qin.l2);
  EXPECT_LT(e_qin.l2, e_flt.l2);
}

// ADC-aware search (QuantOptions::adc): on a layer whose 32-row crossbar tiles clip in 5-bit ADCs,
// searching through the ADC numerics picks other steps than the ideal search, and the layer's
// output error with the ADCs in the golden executor (IntExecutor with the same AdcNumerics) against
// the float layer drops, on held-out images.
TEST(AdcSearch, ChangesTheStepsAndLowersTheErrorWithTheAdcsInTheLoop) {
  const uint64_t seed = 36;
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  const model::Graph g = one_layer(seed);
  const Dataset calib = random_images(64, seed + 1);
  const Dataset test = random_images(64, seed + 2);
  AdcNumerics adc;
  adc.xbar_rows = 32;
  adc.cell_bits = 2;
  adc.input_bits_per_cycle = 1;
  adc.adc_bits = 5;  // full scale 31 < 32 rows x 3: clips
  QuantOptions o = options("block:4x48", 4, SearchMethod::Output);
  o.bias_correction = BiasCorrection::Off;  // the search's objective alone
  const QuantizedModel plain = quantize(g, o, calib);
  o.adc = adc;
  const QuantizedModel aware = quantize(g, o, calib);
  EXPECT_NE(plain.layers[0].block_scale, aware.layers[0].block_scale);
  const std::vector<float> ref = run(g, test);
  std::vector<float> in(static_cast<std::size_t>(test.count * test.image_size()));
  test.fill_batch(0, test.count, in.data());
  auto adc_error = [&](const QuantizedModel& m) {
    std::vector<float> out(ref.size());
    IntExecutor(m, 1, IntGemm::Fast, adc).run(in.data(), test.count, out.data());
    return errors(out, ref).l2;
  };
  const double e_plain = adc_error(plain), e_aware = adc_error(aware);
  std::printf("output mse with the ADCs: ideal search %.5g, ADC-aware search %.5g\n", e_plain,
              e_aware);
  EXPECT_LT(e_aware, 0.9 * e_plain);
}

// The ADC-aware search runs rows and candidates on threads; every number it compares is computed
// on its own and summed in a fixed order, so the steps and codes do not depend on the thread count
// (channelwise: one row per block, the threads split candidates; block: rows and candidates; the
// cosine metric, whose sums run across blocks).
TEST(AdcSearch, SameResultOnOneAndThreeThreads) {
  const uint64_t seed = 37;
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  const model::Graph g = one_layer(seed);
  const Dataset calib = random_images(32, seed + 1);
  AdcNumerics adc;
  adc.xbar_rows = 32;
  adc.adc_bits = 5;
  for (const char* gran : {"channel", "block:4x48"})
    for (const SearchMetric metric : {SearchMetric::L2, SearchMetric::Cosine}) {
      SCOPED_TRACE(gran);
      QuantOptions o = options(gran, 4, SearchMethod::Output);
      o.adc = adc;
      o.metric = metric;
      const QuantizedModel one = quantize(g, o, calib);
      o.threads = 3;
      const QuantizedModel three = quantize(g, o, calib);
      EXPECT_EQ(one.layers[0].block_scale, three.layers[0].block_scale);
      EXPECT_EQ(one.layers[0].q_weight, three.layers[0].q_weight);
      ASSERT_EQ(one.acts.size(), three.acts.size());
      for (std::size_t v = 0; v < one.acts.size(); ++v)
        EXPECT_EQ(one.acts[v].scale, three.acts[v].scale) << "value " << v;
    }
}

TEST(WeightGrid, LowerEdgeFollowsTheBitWidthUnlessSet) {
  QuantOptions o;
  EXPECT_EQ(weight_grid_lo(o, 2), 0.15);
  EXPECT_EQ(weight_grid_lo(o, 3), 0.15);
  EXPECT_EQ(weight_grid_lo(o, 4), 0.3);
  EXPECT_EQ(weight_grid_lo(o, 8), 0.5);
  EXPECT_EQ(activation_grid_lo(o), 0.5);
  o.grid_lo = 0.7;
  EXPECT_EQ(weight_grid_lo(o, 2), 0.7);
  EXPECT_EQ(activation_grid_lo(o), 0.7);
}

// The report counts blocks whose chosen factor sits on a grid edge: a grid [0.9, 1.0] is too
// narrow for 2-bit weights with trained-like (Laplace, heavy-tailed) values, whose weight-MSE
// optimum lies far below min-max, so every block sits on its lower edge; the automatic grid holds
// them all.
TEST(WeightGrid, ReportCountsChoicesOnTheEdges) {
  model::Graph g = one_layer(34);
  std::mt19937_64 rng(34);
  std::exponential_distribution<float> expo(1.0f);
  for (float& w : g.nodes.back().weight.data) w = (rng() & 1 ? 0.05f : -0.05f) * expo(rng);
  const Dataset calib = random_images(16, 35);
  QuantOptions o = options("block:4x48", 2, SearchMethod::Wmse);
  o.grid_lo = 0.9;
  o.grid_hi = 1.0;
  const QuantizedModel narrow = quantize(g, o, calib);
  ASSERT_EQ(narrow.grid_use.size(), 1u);
  const GridUse& n = narrow.grid_use[0];
  EXPECT_EQ(n.w_bits, 2);
  EXPECT_EQ(n.blocks, 16);  // 4 output groups x 4 input groups
  EXPECT_EQ(n.at_lo, n.blocks);
  EXPECT_EQ(n.at_hi, 0);
  o.grid_lo = 0.0;
  o.grid_hi = 1.2;
  const QuantizedModel autogrid = quantize(g, o, calib);
  const GridUse& a = autogrid.grid_use[0];
  EXPECT_EQ(a.lo, 0.15);
  EXPECT_EQ(a.at_lo + a.at_hi, 0);
  std::printf("chosen factors W2: min %.3f p50 %.3f max %.3f\n", a.quantile(0), a.quantile(0.5),
              a.quantile(1));
  EXPECT_GT(a.quantile(0), a.lo);
  EXPECT_LT(a.quantile(0.5), 0.5);  // where the old [0.5, 1.2] grid could not go
}

}  // namespace
}  // namespace tilescale::quant
