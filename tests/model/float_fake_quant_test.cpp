// The float executor's FakeQuant (run_node; vectorised where the CPU allows) against the scalar
// definition quantize_to_grid(x, step, range) * step of model/grid.h, bit for bit: random values,
// exact ties of x / step, values far outside the range, an empty range (lo > hi) and lengths with
// and without a vector tail.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "tilescale/model/float_kernels.h"
#include "tilescale/model/grid.h"

namespace tilescale::model {
namespace {

void expect_fake_quant_exact(float step, float lo, float hi, const std::vector<float>& x) {
  Graph g;
  const int64_t count = static_cast<int64_t>(x.size());
  g.values = {Value{"x", {count}}, Value{"y", {count}}};
  Node node;
  node.op = Op::FakeQuant;
  node.inputs = {0};
  node.output = 1;
  node.fq_step = step;
  node.fq_lo = lo;
  node.fq_hi = hi;
  std::vector<float> got(x.size(), -7.0f);
  kernels::Scratch scratch;
  kernels::run_node(g, node, 1, {x.data()}, got.data(), kernels::Clamp{}, scratch);
  const IntRange r{static_cast<int64_t>(lo), static_cast<int64_t>(hi)};
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float want = static_cast<float>(quantize_to_grid(x[i], step, r)) * step;
    ASSERT_EQ(std::memcmp(&got[i], &want, sizeof(float)), 0)
        << "x = " << x[i] << ", step " << step << ", range " << lo << ".." << hi << ": " << got[i]
        << " != " << want;
  }
}

TEST(FloatFakeQuant, BitIdenticalToQuantizeToGridIncludingTiesAndSaturation) {
  const uint32_t seed = 4100;
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> real(-3.0f, 3.0f);
  const float step = 0.0173f;
  std::vector<float> x;
  for (int i = 0; i < 1000; ++i) x.push_back(real(gen));
  for (int k = -300; k <= 300; ++k) x.push_back((static_cast<float>(k) + 0.5f) * step);  // ties
  // Far outside every code range (saturation) but inside int64 after the division: beyond it, or
  // for NaN, the scalar definition's double -> int64 conversion is undefined behaviour in C++.
  for (const float v : {1e6f, -1e6f, 3e9f, -3e9f, 1e15f, -1e15f, 0.0f, -0.0f}) x.push_back(v);
  // 1609 values: whole vectors and a tail; then every short length.
  expect_fake_quant_exact(step, -128.0f, 127.0f, x);
  expect_fake_quant_exact(step, 0.0f, 15.0f, x);
  expect_fake_quant_exact(0.5f, -8.0f, 7.0f, x);
  expect_fake_quant_exact(step, 5.0f, 3.0f, x);  // lo > hi: the saturate expression's own result
  for (std::size_t len = 1; len <= 17; ++len)
    expect_fake_quant_exact(step, -128.0f, 127.0f, std::vector<float>(x.end() - len, x.end()));
}

}  // namespace
}  // namespace tilescale::model
