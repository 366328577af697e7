// The fast Conv/Gemm routes (quant/int_gemm_fast.h: the int16 kernels and the folded double GEMM)
// against the reference kernels::conv_gemm_blocks (itself tested against exact 128-bit arithmetic
// in int_kernels_test.cpp): byte-identical codes on random layers of every granularity, bit width,
// stride and padding, with each int16 kernel this CPU can run and with none; and each exactness
// bound at its edge - one input code inside it takes the route, one code more takes the fallback.
// Seeds are fixed and printed on failure; TILESCALE_TEST_SEED overrides them all.
#include "tilescale/quant/int_gemm_fast.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "int_test_support.h"
#include "tilescale/quant/granularity.h"

namespace tilescale::quant::kernels {
namespace {

using test::Random;
namespace layout = model::layout;

// A layer with its own storage; view points into it.
struct Layer {
  BlockGrid grid;
  std::vector<int8_t> weight;
  std::vector<FixedMultiplier> mult;
  std::vector<int64_t> bias;
  GemmLayer view;
};

// A Conv (kernel > 0) or Gemm (kernel == 0) layer with random codes: w_bits weights, multipliers
// of 16 bits with shifts r in [r_lo, r_hi] (F = max r), small biases.
Layer make_layer(Random& rnd, const std::string& granularity, int64_t cin, int64_t cout,
                 int64_t groups, int64_t kernel, int w_bits, int r_lo, int r_hi, int64_t stride = 1,
                 int64_t dilation = 1) {
  Layer L;
  model::Node node;
  const int64_t cin_g = cin / groups;
  if (kernel == 0) {
    node.op = model::Op::Gemm;
    node.weight.shape = {cout, cin};
    L.view.shape = layout::conv_shape(node, model::Value{"x", {cin}}, model::Value{"y", {cout}});
  } else {
    node.op = model::Op::Conv;
    node.window.kernel_h = node.window.kernel_w = kernel;
    node.window.pad_top = node.window.pad_left = node.window.pad_bottom = node.window.pad_right =
        kernel / 2;
    node.window.stride_h = node.window.stride_w = stride;
    node.window.dilation_h = node.window.dilation_w = dilation;
    node.window.groups = groups;
    node.weight.shape = {cout, cin_g, kernel, kernel};
    const int64_t pad = kernel / 2 * 2, span = dilation * (kernel - 1) + 1;
    L.view.shape = layout::conv_shape(
        node, model::Value{"x", {cin, 7, 6}},
        model::Value{"y", {cout, (7 + pad - span) / stride + 1, (6 + pad - span) / stride + 1}});
  }
  L.grid = make_block_grid(node, Granularity::parse(granularity));
  for (int64_t i = 0; i < cout * L.view.shape.k(); ++i)
    L.weight.push_back(
        static_cast<int8_t>(rnd.uniform(signed_range(w_bits).lo, signed_range(w_bits).hi)));
  int frac = 0;
  for (int64_t b = 0; b < L.grid.num_blocks(); ++b) {
    FixedMultiplier f;
    f.m = rnd.uniform(1 << 15, (1 << 16) - 1);
    f.r = static_cast<int>(rnd.uniform(r_lo, r_hi));
    frac = std::max(frac, f.r);
    L.mult.push_back(f);
  }
  for (int64_t o = 0; o < cout; ++o) L.bias.push_back(rnd.uniform(-(int64_t{1} << 30), 1 << 30));
  L.view.groups = groups;
  L.view.out_channels = cout;
  L.view.grid = &L.grid;
  L.view.weight = L.weight.data();
  L.view.multiplier = L.mult.data();
  L.view.bias_q = L.bias.data();
  L.view.frac_bits = frac;
  L.view.range = signed_range(8);
  return L;
}

int64_t input_size(const GemmLayer& L) { return L.shape.cin_g * L.groups * L.shape.h * L.shape.w; }
int64_t output_size(const GemmLayer& L) { return L.out_channels * L.shape.positions(); }

// Selects an int16 kernel for one scope ("none": no int16 route), back to "auto" at its end.
class Int16Kernel {
 public:
  explicit Int16Kernel(const std::string& name) { ok_ = select_int16_kernel(name); }
  ~Int16Kernel() { select_int16_kernel("auto"); }
  bool ok() const { return ok_; }

 private:
  bool ok_ = false;
};

// "none" and every int16 kernel this CPU can run (the AVX2 one runs on AVX-512 CPUs as well).
std::vector<std::string> kernel_choices() {
  std::vector<std::string> names{"none"};
  for (const char* name : {"avx2", "avx512-vnni"})
    if (Int16Kernel(name).ok()) names.push_back(name);
  return names;
}

// conv_gemm with the folded weights against conv_gemm_blocks on n samples; returns the path.
GemmPath expect_same_as_blocks(const GemmLayer& L, const std::vector<int64_t>& x, int64_t n) {
  const FoldedGemm folded = fold_gemm(L);
  std::vector<int64_t> want(static_cast<std::size_t>(n * output_size(L)), -7), got(want.size(), 7);
  GemmScratch scratch;
  conv_gemm_blocks(L, n, x.data(), want.data(), scratch);
  const GemmPath path = conv_gemm(L, &folded, n, x.data(), got.data(), scratch);
  for (std::size_t i = 0; i < want.size(); ++i)
    if (got[i] != want[i]) {
      ADD_FAILURE() << "code " << i << ": " << got[i] << " != reference " << want[i];
      break;
    }
  return path;
}

struct RandomCase {
  std::string granularity;
  int64_t cin, cout, groups, kernel, stride;
  int64_t dilation = 1;
};

// Every granularity, bit widths 2..8, unsigned and signed inputs, requantized and kept
// accumulators, strides 1, 2 and 3 (the int16 route's direct reads from phase planes), dilation 2
// and Gemm (its im2col), 1x1, 3x3 and 5x5 kernels: each takes the int16 route with every int16
// kernel (the folded GEMM with none; shift spread 0..3) and matches the reference.
TEST(IntGemmFast, RandomLayersMatchReferenceEveryGranularityAndBitWidth) {
  const RandomCase cases[] = {
      {"layer", 12, 8, 1, 3, 1},        {"channel", 12, 8, 1, 3, 1},  {"block:4x5", 12, 8, 1, 3, 1},
      {"block:16x16", 32, 20, 1, 3, 1}, {"mx:32", 12, 8, 1, 3, 1},    {"vsq:16", 12, 8, 1, 3, 1},
      {"channel", 8, 8, 8, 3, 1},       {"block:4x4", 8, 8, 2, 1, 1}, {"block:4x5", 12, 9, 1, 3, 2},
      {"mx:32", 12, 17, 1, 5, 1},       {"channel", 6, 12, 1, 1, 2},  {"mx:32", 70, 10, 1, 0, 1},
      {"block:16x16", 70, 10, 1, 0, 1}, {"mx:32", 12, 8, 1, 3, 1, 2}, {"block:4x4", 8, 6, 1, 3, 3}};
  for (const std::string& kernel : kernel_choices()) {
    const Int16Kernel choice(kernel);
    ASSERT_TRUE(choice.ok());
    for (int w_bits = 2; w_bits <= 8; ++w_bits)
      for (const RandomCase& c : cases)
        for (const bool keep : {false, true}) {
          Random rnd(1000 + static_cast<uint32_t>(w_bits));
          SCOPED_TRACE(rnd.note() + "; int16 kernel " + kernel + "; " + c.granularity + " W" +
                       std::to_string(w_bits) + " cin " + std::to_string(c.cin) + " groups " +
                       std::to_string(c.groups) + " kernel " + std::to_string(c.kernel) +
                       " stride " + std::to_string(c.stride) + " dilation " +
                       std::to_string(c.dilation) + (keep ? " keep_acc" : ""));
          const IntRange in = w_bits % 2 ? unsigned_range(8) : signed_range(w_bits < 5 ? 4 : 8);
          // Shifts that spread requantized outputs over the 8-bit range: a typical sum of K
          // products, times m ~ 1.5 * 2^15, lands near 16 output codes.
          const double k = static_cast<double>(c.cin / c.groups * std::max<int64_t>(c.kernel, 1) *
                                               std::max<int64_t>(c.kernel, 1));
          const double typical = std::sqrt(k) * double(in.hi) * std::ldexp(1.0, w_bits - 1) / 3.0;
          const int r_lo = static_cast<int>(std::lround(std::log2(typical * 1.5 * 32768 / 16)));
          Layer L = make_layer(rnd, c.granularity, c.cin, c.cout, c.groups, c.kernel, w_bits, r_lo,
                               r_lo + 3, c.stride, c.dilation);
          L.view.keep_acc = keep;
          const int64_t n = c.kernel == 0 ? 37 : 3;  // Gemm: N = n, so whole panels too
          const std::vector<int64_t> x = rnd.codes(n * input_size(L.view), in);
          EXPECT_EQ(expect_same_as_blocks(L.view, x, n),
                    kernel == "none" ? GemmPath::Folded : GemmPath::Int16);
        }
  }
}

// Shifts spread over 40 bits: S passes 2^53, fold_gemm keeps no weights, conv_gemm falls back.
TEST(IntGemmFast, WideShiftSpreadFallsBackToBlocks) {
  Random rnd(2001);
  SCOPED_TRACE(rnd.note());
  // Shifts 0..28 put the folded weight sum S at or above 2^53 (no fold), while the reference's
  // accumulators stay below 2^59 (S <= 70 * 128 * 2^16 * 2^28 < 2^58, inputs of 2 bits): a valid
  // layer, unlike a wider spread that would overflow int64 in the reference path as well.
  const Layer L = make_layer(rnd, "mx:32", 70, 10, 1, 0, 8, 0, 28);
  EXPECT_TRUE(fold_gemm(L.view).weight.empty());
  EXPECT_TRUE(fold_gemm(L.view).weight_pairs.empty());  // the int16 route needs the bound as well
  const std::vector<int64_t> x = rnd.codes(4 * input_size(L.view), unsigned_range(2));
  EXPECT_EQ(expect_same_as_blocks(L.view, x, 4), GemmPath::Blocks);
}

// The bound at its edge. A Gemm of K = 16 inputs, one output, one block, weights all -128 (8
// bits), multiplier m = 2^15 with r = F - 14: s = 2^29, S = 16 * 128 * 2^29 = 2^40. Inputs with
// max |q_x| = 2^13 - 1 give A * S = 2^53 - 2^40 < 2^53: folded. 2^13 gives exactly 2^53: the
// fallback. Both byte-identical to conv_gemm_blocks.
TEST(IntGemmFast, BoundEdgeOneCodeInsideFoldsOneCodeOutsideFallsBack) {
  Random rnd(2002);
  SCOPED_TRACE(rnd.note());
  Layer L = make_layer(rnd, "layer", 16, 1, 1, 0, 8, 0, 0);
  std::fill(L.weight.begin(), L.weight.end(), int8_t{-128});
  L.mult[0] = {int64_t{1} << 15, 0};
  L.view.frac_bits = 14;
  L.view.keep_acc = true;  // the 2^53-scale sums themselves are compared, not a rounded code
  const FoldedGemm folded = fold_gemm(L.view);
  ASSERT_EQ(folded.bound, int64_t{1} << 40);
  const int64_t inside = (int64_t{1} << 13) - 1, outside = int64_t{1} << 13;
  EXPECT_TRUE(fold_exact(folded, inside));
  EXPECT_FALSE(fold_exact(folded, outside));
  // The int16 route shares the bound (its block sums, 16 * 128 * 2^13 = 2^24, are far inside
  // its own): with an int16 kernel the inside case takes it, the outside case falls back as well.
  for (const std::string& kernel : kernel_choices()) {
    const Int16Kernel choice(kernel);
    for (const int64_t a : {inside, outside}) {
      SCOPED_TRACE("int16 kernel " + kernel + ", max |q_x| = " + std::to_string(a));
      // One sample at -a (the extreme), the others random within +-a.
      std::vector<int64_t> x = rnd.codes(3 * 16, {-a, a});
      std::fill(x.begin(), x.begin() + 16, -a);
      EXPECT_EQ(expect_same_as_blocks(L.view, x, 3), a == outside       ? GemmPath::Blocks
                                                     : kernel == "none" ? GemmPath::Folded
                                                                        : GemmPath::Int16);
    }
  }
}

// The same edge in the reduction length, with 8-bit codes: s = 2^15 * 2^14 = 2^29 turns the bound
// into K * 255 * 128 < 2^24, the fp32 bound of a plain block sum. K = 514 unsigned codes of 255
// times |w| = 128 stays below it; one more input element (K = 515) crosses it.
TEST(IntGemmFast, BoundEdgeInReductionLength) {
  for (const int64_t k : {int64_t{514}, int64_t{515}}) {
    Random rnd(2003);
    SCOPED_TRACE(rnd.note() + "; K = " + std::to_string(k));
    Layer L = make_layer(rnd, "layer", k, 2, 1, 0, 8, 0, 0);
    std::fill(L.weight.begin(), L.weight.end(), int8_t{-128});
    L.mult[0] = {int64_t{1} << 15, 0};
    L.view.frac_bits = 14;
    L.view.keep_acc = true;
    std::vector<int64_t> x = rnd.codes(2 * k, unsigned_range(8));
    std::fill(x.begin(), x.begin() + k, 255);
    const Int16Kernel none("none");
    EXPECT_EQ(expect_same_as_blocks(L.view, x, 2), k == 514 ? GemmPath::Folded : GemmPath::Blocks);
  }
}

// The int16 route's own bound at its edge, with the fold bound far away (s = 1). A Gemm of K = 513
// inputs, weights all -128 in one block: B = 513 * 128 = 65664, and the block sums stay in int32
// while A * B <= 2^31 - 1, i.e. up to A = 32704 (2147475456); A = 32705 (2147541120) takes the
// folded GEMM. Both byte-identical to conv_gemm_blocks, with every int16 kernel.
TEST(IntGemmFast, Int16BoundEdgeInt32BlockSums) {
  for (const std::string& kernel : kernel_choices()) {
    if (kernel == "none") continue;
    const Int16Kernel choice(kernel);
    Random rnd(2004);
    Layer L = make_layer(rnd, "layer", 513, 3, 1, 0, 8, 0, 0);
    std::fill(L.weight.begin(), L.weight.end(), int8_t{-128});
    L.mult[0] = {1, 0};
    L.view.frac_bits = 0;
    L.view.keep_acc = true;
    const FoldedGemm folded = fold_gemm(L.view);
    ASSERT_EQ(folded.block_abs_sum, 65664);
    EXPECT_TRUE(int16_exact(folded, 32704));
    EXPECT_FALSE(int16_exact(folded, 32705));
    EXPECT_TRUE(fold_exact(folded, 32705));
    for (const int64_t a : {int64_t{32704}, int64_t{32705}}) {
      SCOPED_TRACE(rnd.note() + "; int16 kernel " + kernel + ", max |q_x| = " + std::to_string(a));
      std::vector<int64_t> x = rnd.codes(3 * 513, {-a, a});
      std::fill(x.begin(), x.begin() + 513, a);  // the extreme block sum, 513 * a * -128
      EXPECT_EQ(expect_same_as_blocks(L.view, x, 3),
                a == 32704 ? GemmPath::Int16 : GemmPath::Folded);
    }
  }
}

// The int16 operand bound: a Gemm of K = 1 with weight -128 (B = 128, so A * B is far inside
// int32) takes the int16 route up to |q_x| = 2^15 - 1 and the folded GEMM at 2^15, whose code does
// not fit int16.
TEST(IntGemmFast, Int16BoundEdgeOperandRange) {
  for (const std::string& kernel : kernel_choices()) {
    if (kernel == "none") continue;
    const Int16Kernel choice(kernel);
    Random rnd(2005);
    Layer L = make_layer(rnd, "layer", 1, 2, 1, 0, 8, 0, 0);
    std::fill(L.weight.begin(), L.weight.end(), int8_t{-128});
    L.mult[0] = {1, 0};
    L.view.frac_bits = 0;
    L.view.keep_acc = true;
    for (const int64_t a : {int64_t{32767}, int64_t{32768}}) {
      SCOPED_TRACE(rnd.note() + "; int16 kernel " + kernel + ", max |q_x| = " + std::to_string(a));
      std::vector<int64_t> x = rnd.codes(20, {-a, a});
      x[0] = -a;
      x[7] = a;
      EXPECT_EQ(expect_same_as_blocks(L.view, x, 20),
                a == 32767 ? GemmPath::Int16 : GemmPath::Folded);
    }
  }
}

}  // namespace
}  // namespace tilescale::quant::kernels
