#include "tilescale/quant/adc.h"

#include <algorithm>
#include <stdexcept>

#include "tilescale/core/error.h"

namespace tilescale::quant {

void AdcNumerics::validate() const {
  auto in_range = [](const char* field, int v, int lo, int hi) {
    if (v < lo || v > hi)
      throw InputError(std::string(field) + ": " + std::to_string(v) + " is outside " +
                       std::to_string(lo) + ".." + std::to_string(hi));
  };
  in_range("xbar_rows", xbar_rows, 1, kMaxXbarRows);
  in_range("cell_bits", cell_bits, 1, 8);
  in_range("input_bits_per_cycle", input_bits_per_cycle, 1, 8);
  in_range("adc_bits", adc_bits, 1, kMaxAdcBits);
}

std::string AdcNumerics::str() const {
  return "xbar_rows " + std::to_string(xbar_rows) + ", cell_bits " + std::to_string(cell_bits) +
         ", input_bits " + std::to_string(input_bits_per_cycle) + ", adc_bits " +
         std::to_string(adc_bits) + " " + kAdcRangeNames.name(range);
}

std::vector<RowTile> crossbar_row_tiles(const std::vector<int64_t>& red_group, int64_t xbar_rows) {
  if (xbar_rows < 1) throw std::invalid_argument("crossbar_row_tiles: xbar_rows must be >= 1");
  std::vector<RowTile> tiles;
  const int64_t k = static_cast<int64_t>(red_group.size());
  int64_t run0 = 0;
  for (int64_t i = 1; i <= k; ++i) {
    if (i < k &&
        red_group[static_cast<std::size_t>(i)] == red_group[static_cast<std::size_t>(run0)])
      continue;
    for (int64_t k0 = run0; k0 < i; k0 += xbar_rows)
      tiles.push_back({k0, std::min(xbar_rows, i - k0), red_group[static_cast<std::size_t>(run0)]});
    run0 = i;
  }
  return tiles;
}

std::vector<InputStep> input_steps(int a_bits, bool is_signed, int input_bits_per_cycle) {
  std::vector<InputStep> steps;
  const int magnitude = is_signed ? a_bits - 1 : a_bits;
  for (int b = 0; b < magnitude; b += input_bits_per_cycle)
    steps.push_back({b, std::min(input_bits_per_cycle, magnitude - b), false});
  if (is_signed) steps.push_back({a_bits - 1, 1, true});
  return steps;
}

namespace {
// The worst column sum of one step of a tile of `rows` rows.
int64_t worst_sum(const AdcNumerics& adc, int64_t rows) {
  return rows * ((int64_t{1} << adc.cell_bits) - 1) *
         ((int64_t{1} << adc.input_bits_per_cycle) - 1);
}
}  // namespace

int adc_shift(const AdcNumerics& adc) {
  if (adc.range == AdcRange::Clip) return 0;
  const int64_t worst = worst_sum(adc, adc.xbar_rows), full = (int64_t{1} << adc.adc_bits) - 1;
  int e = 0;
  while ((full << e) < worst) ++e;
  return e;
}

bool adc_lossless(const AdcNumerics& adc, int64_t rows) {
  return adc_shift(adc) == 0 && worst_sum(adc, rows) <= (int64_t{1} << adc.adc_bits) - 1;
}

int64_t cim_tile_sum_reference(const int64_t* x, const int64_t* w, int64_t rows, int a_bits,
                               bool a_signed, int w_bits, const AdcNumerics& adc) {
  const int slices = weight_slices(w_bits, adc.cell_bits);
  const int wide = slices * adc.cell_bits;
  const int e = adc_shift(adc);
  const IntRange xr = a_signed ? signed_range(a_bits) : unsigned_range(a_bits);
  for (int64_t r = 0; r < rows; ++r)
    if (x[r] < xr.lo || x[r] > xr.hi)
      throw std::out_of_range("cim_tile_sum_reference: input code " + std::to_string(x[r]) +
                              " outside its " + std::to_string(a_bits) + "-bit grid");
  int64_t d = 0;
  for (const InputStep& st : input_steps(a_bits, a_signed, adc.input_bits_per_cycle)) {
    const int64_t mask = (int64_t{1} << st.bits) - 1;
    auto digit = [&](int64_t r) {
      const uint64_t pattern = static_cast<uint64_t>(x[r]) & ((uint64_t{1} << a_bits) - 1);
      return static_cast<int64_t>(pattern >> st.bit0) & mask;
    };
    int64_t row_count = 0;
    for (int64_t r = 0; r < rows; ++r) row_count += digit(r);
    int64_t term = -(row_count << (wide - 1));
    for (int s = 0; s < slices; ++s) {
      int64_t sum = 0;
      for (int64_t r = 0; r < rows; ++r)
        sum += digit(r) * weight_slice(w[r], wide, adc.cell_bits, s);
      term += adc_convert(sum, e, adc.adc_bits) << (s * adc.cell_bits);
    }
    d += (st.negative ? -term : term) * (int64_t{1} << st.bit0);
  }
  return d;
}

}  // namespace tilescale::quant
