#include "tilescale/quant/cim_search.h"

#include <algorithm>

namespace tilescale::quant::kernels {

void cim_search_inputs(const CimGemm& c, const int32_t* x, int64_t positions, CimSearchInputs& in) {
  const int64_t words = c.words(), ab = c.a_bits;
  const int64_t k = c.tiles.empty() ? 0 : c.tiles.back().k0 + c.tiles.back().length;
  const std::size_t nt = c.tiles.size(), ns = c.steps.size();
  const uint32_t mask = (uint32_t{1} << ab) - 1;
  in.positions = positions;
  in.xplanes.assign(static_cast<std::size_t>(positions * ab * words), 0);
  in.info.assign(static_cast<std::size_t>(positions) * nt * ns, StepInfo{});
  in.xsafe.assign(static_cast<std::size_t>(positions * k), 0);
  in.tile_planes.assign(nt, 0);
  in.tile_dot.assign(nt, 0);
  std::vector<int64_t> digit_sum(ns);
  for (int64_t p = 0; p < positions; ++p) {
    const int32_t* xp = x + p * k;
    uint64_t* xm = in.xplanes.data() + p * ab * words;
    int16_t* xs = in.xsafe.data() + p * k;
    for (std::size_t t = 0; t < nt; ++t) {
      const RowTile& tile = c.tiles[t];
      StepInfo* info = in.info.data() + (static_cast<std::size_t>(p) * nt + t) * ns;
      std::fill(digit_sum.begin(), digit_sum.end(), 0);
      for (int64_t r = 0; r < tile.length; ++r) {
        const uint32_t u = static_cast<uint32_t>(xp[tile.k0 + r]) & mask;
        for (std::size_t si = 0; si < ns; ++si) {
          const InputStep& st = c.steps[si];
          digit_sum[si] += (u >> st.bit0) & ((1u << st.bits) - 1);
        }
        const int64_t word = c.word0[t] + r / 64;
        const uint64_t bit = uint64_t{1} << (r % 64);
        for (uint32_t pat = u; pat != 0; pat &= pat - 1)
          xm[__builtin_ctz(pat) * words + word] |= bit;
      }
      // A step is safe iff R_t <= safe_count (a lossless tile: every step); x_safe sums the safe
      // steps' signed, shifted digits, which for an all-safe tile is the input code itself.
      for (std::size_t si = 0; si < ns; ++si) {
        info[si].row_count = digit_sum[si];
        const bool safe = c.tile_lossless[t] || digit_sum[si] <= c.safe_count;
        info[si].planes = digit_sum[si] > 0 && !safe;
        if (info[si].planes) in.tile_planes[t] = 1;
        if (digit_sum[si] > 0 && safe) in.tile_dot[t] = 1;
      }
      for (int64_t r = 0; r < tile.length; ++r) {
        const uint32_t u = static_cast<uint32_t>(xp[tile.k0 + r]) & mask;
        int32_t v = 0;
        for (std::size_t si = 0; si < ns; ++si) {
          if (info[si].planes) continue;
          const InputStep& st = c.steps[si];
          const int32_t d = static_cast<int32_t>((u >> st.bit0) & ((1u << st.bits) - 1)) << st.bit0;
          v += st.negative ? -d : d;
        }
        xs[tile.k0 + r] = static_cast<int16_t>(v);
      }
    }
  }
}

void cim_search_weights(const CimGemm& c, const std::vector<int64_t>& tiles, const int8_t* q_hw,
                        bool with_planes, int16_t* w16, uint64_t* wplanes) {
  const int64_t words = c.words();
  for (int64_t t : tiles) {
    const RowTile& tile = c.tiles[static_cast<std::size_t>(t)];
    for (int64_t r = 0; r < tile.length; ++r) w16[tile.k0 + r] = q_hw[tile.k0 + r];
    if (!with_planes) continue;
    const int64_t w0 = c.word0[t], tw = c.word0[t + 1] - w0;
    for (int b = 0; b < c.wide; ++b) std::fill_n(wplanes + b * words + w0, tw, 0);
    for (int64_t r = 0; r < tile.length; ++r) {
      const uint64_t bit = uint64_t{1} << (r % 64);
      const int64_t word = w0 + r / 64;
      for (uint64_t u = static_cast<uint64_t>(q_hw[tile.k0 + r] + (int64_t{1} << (c.wide - 1)));
           u != 0; u &= u - 1)
        wplanes[__builtin_ctzll(u) * words + word] |= bit;
    }
  }
}

namespace {

struct SumArgs {
  const CimGemm* c;
  const CimSearchInputs* in;
  const std::vector<int64_t>* tiles;
  const int16_t* w16;
  const uint64_t* wplanes;
  double* out;
};

// The int16 pair products the compiler turns into multiply-adds (pmaddwd / vpmaddwd).
[[gnu::always_inline]] inline int32_t dot16(const int16_t* a, const int16_t* b, int64_t n) {
  int32_t s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<int32_t>(a[i]) * static_cast<int32_t>(b[i]);
  return s;
}

[[gnu::always_inline]] inline void sums_body(const SumArgs& a) {
  const CimGemm& c = *a.c;
  const CimSearchInputs& in = *a.in;
  const int64_t words = c.words(), ab = c.a_bits;
  const int64_t k = c.tiles.back().k0 + c.tiles.back().length;
  const std::size_t nt = c.tiles.size(), ns = c.steps.size();
  for (int64_t p = 0; p < in.positions; ++p) {
    const uint64_t* xm = in.xplanes.data() + p * ab * words;
    const int16_t* xs = in.xsafe.data() + p * k;
    const StepInfo* info = in.info.data() + static_cast<std::size_t>(p) * nt * ns;
    int64_t sum = 0;
    for (int64_t t : *a.tiles) {
      const RowTile& tile = c.tiles[static_cast<std::size_t>(t)];
      // x_safe is all 0 without a safe step (the rows rule: none is).
      if (in.tile_dot[static_cast<std::size_t>(t)])
        sum += dot16(xs + tile.k0, a.w16 + tile.k0, tile.length);
      if (in.tile_planes[static_cast<std::size_t>(t)]) {
        const int64_t w0 = c.word0[t], tw = c.word0[t + 1] - w0;
        sum += cim_tile_sum_planes(c, xm + w0, a.wplanes + w0, words, tw, info + t * ns);
      }
    }
    a.out[p] = static_cast<double>(sum);
  }
}

// Compiled per instruction set and chosen at run time, as int_cim.cpp does.
[[gnu::target("avx2,popcnt"), gnu::optimize("O3")]] void sums_avx2(const SumArgs& a) {
  sums_body(a);
}
[[gnu::target("popcnt"), gnu::optimize("O3")]] void sums_popcnt(const SumArgs& a) { sums_body(a); }
[[gnu::optimize("O3")]] void sums_portable(const SumArgs& a) { sums_body(a); }

}  // namespace

void cim_search_sums(const CimGemm& c, const CimSearchInputs& in, const std::vector<int64_t>& tiles,
                     const int16_t* w16, const uint64_t* wplanes, double* out) {
  static const auto fn = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt")
                             ? sums_avx2
                         : __builtin_cpu_supports("popcnt") ? sums_popcnt
                                                            : sums_portable;
  if (c.tiles.empty()) {
    std::fill_n(out, in.positions, 0.0);
    return;
  }
  fn(SumArgs{&c, &in, &tiles, w16, wplanes, out});
}

}  // namespace tilescale::quant::kernels
