#include "tilescale/map/tiling.h"

#include <algorithm>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>

#include "tilescale/core/error.h"

namespace tilescale::map {
namespace {

// Distinct blocks (all in one reduction group) among output channels [o0, o0 + count).
std::vector<int64_t> blocks_of(const LayerWorkload& layer, int64_t o0, int64_t count,
                               int64_t red_group) {
  std::set<int64_t> s;
  for (int64_t o = o0; o < o0 + count; ++o)
    s.insert(layer.out_group[static_cast<std::size_t>(o)] * layer.red_groups + red_group);
  return {s.begin(), s.end()};
}

std::string kib_text(double kib) {
  std::ostringstream s;
  s << kib;
  return s.str();
}

}  // namespace

std::vector<KFold> reduction_folds(const LayerWorkload& layer, int64_t rows, Align align) {
  // A fold of 0 rows never advances: refuse instead of growing the fold list without end.
  if (rows < 1) throw std::invalid_argument("reduction_folds: rows must be >= 1");
  const auto& g = layer.red_group;
  std::vector<KFold> folds;
  if (align == Align::Strict) {
    for (int64_t k0 = 0; k0 < layer.k; k0 += rows) {
      const int64_t len = std::min(rows, layer.k - k0);
      for (int64_t k = k0 + 1; k < k0 + len; ++k) {
        if (g[static_cast<std::size_t>(k)] != g[static_cast<std::size_t>(k0)]) {
          throw AlignError(
              "layer '" + layer.name + "': fold " + std::to_string(k0 / rows) +
              " (reduction rows " + std::to_string(k0) + ".." + std::to_string(k0 + len - 1) +
              ") would add input-channel blocks " +
              std::to_string(g[static_cast<std::size_t>(k0)]) + " and " +
              std::to_string(g[static_cast<std::size_t>(k)]) + " in one column sum (granularity " +
              layer.granularity + ", " + std::to_string(layer.cin_g) + " input channels x " +
              std::to_string(layer.kernel) + " kernel positions, " + std::to_string(rows) +
              " array rows); use the pad alignment, or blocks whose input-channel count "
              "is a multiple of the array rows");
        }
      }
      folds.push_back({k0, len, g[static_cast<std::size_t>(k0)], false});
    }
  } else {
    int64_t run0 = 0;
    for (int64_t k = 1; k <= layer.k; ++k) {
      if (k < layer.k && g[static_cast<std::size_t>(k)] == g[static_cast<std::size_t>(run0)])
        continue;
      for (int64_t k0 = run0; k0 < k; k0 += rows)
        folds.push_back({k0, std::min(rows, k - k0), g[static_cast<std::size_t>(run0)], false});
      run0 = k;
    }
  }
  for (std::size_t i = 0; i < folds.size(); ++i)
    folds[i].group_end = i + 1 == folds.size() || folds[i + 1].red_group != folds[i].red_group;
  return folds;
}

std::vector<KFold> reduction_segments(const LayerWorkload& layer) {
  std::vector<int64_t> count(static_cast<std::size_t>(layer.red_groups), 0);
  for (int64_t r : layer.red_group) ++count[static_cast<std::size_t>(r)];
  std::vector<KFold> segs;
  for (int64_t r = 0; r < layer.red_groups; ++r)
    if (count[static_cast<std::size_t>(r)] > 0)
      segs.push_back({-1, count[static_cast<std::size_t>(r)], r, true});
  return segs;
}

int64_t accumulator_words(const ArchConfig& arch) {
  if (arch.dataflow == Dataflow::OS) return arch.rows;
  const int64_t bits = static_cast<int64_t>(arch.ofmap_sram_kib * 8192);
  return bits / (int64_t{arch.cols} * (arch.acc_bits + kAccStorageWideBits));
}

std::vector<SystolicFold> systolic_folds(const LayerWorkload& layer, const ArchConfig& arch,
                                         Align align) {
  arch.require_kind(ArchKind::Systolic, "systolic tiling");
  const int64_t R = arch.rows, C = arch.cols;
  // The edge keeps one int32 and one wide word per output and column of a fold in the ofmap SRAM.
  const int64_t words = accumulator_words(arch);
  const int64_t word_bits = arch.acc_bits + kAccStorageWideBits;
  const int64_t needed_bits = (arch.dataflow == Dataflow::OS ? R : 1) * C * word_bits;
  if (words < 1 || needed_bits > static_cast<int64_t>(arch.ofmap_sram_kib * 8192))
    fail_input(arch.source, "field 'ofmap_sram_kib': " + kib_text(arch.ofmap_sram_kib) +
                                " KiB cannot hold the accumulator storage (" +
                                std::to_string(arch.dataflow == Dataflow::OS ? R : 1) +
                                " word(s) of " + std::to_string(word_bits) + " bits, acc_bits + " +
                                std::to_string(kAccStorageWideBits) + ", per column, " +
                                std::to_string(C) + " columns: " + std::to_string(needed_bits) +
                                " bits)");
  std::vector<SystolicFold> folds;
  std::vector<int64_t> prev_blocks;
  auto add = [&](SystolicFold f, int64_t o0, int64_t o_count, bool output_end) {
    const auto blocks = blocks_of(layer, o0, o_count, f.k.red_group);
    f.blocks = static_cast<int64_t>(blocks.size());
    f.scale_loads = blocks == prev_blocks ? 0 : f.blocks;
    prev_blocks = blocks;
    f.output_end = output_end;
    f.scaled_outputs = f.k.group_end ? f.m_len * f.n_len : 0;
    folds.push_back(f);
  };
  for (int64_t g = 0; g < layer.groups; ++g) {
    const int64_t o_base = g * layer.n;
    if (arch.dataflow == Dataflow::WS) {
      const auto kf = reduction_folds(layer, R, align);
      for (int64_t n0 = 0; n0 < layer.n; n0 += C) {
        const int64_t n_len = std::min(C, layer.n - n0);
        // Pixel tiles: a fold streams at most `words` pixels, whose sums the edge keeps.
        for (int64_t m0 = 0; m0 < layer.m; m0 += words) {
          const int64_t m_len = std::min(words, layer.m - m0);
          for (std::size_t i = 0; i < kf.size(); ++i) {
            SystolicFold f{g, m0, m_len, n0, n_len, kf[i], kf[i].length, n_len, m_len};
            add(f, o_base + n0, n_len, i + 1 == kf.size());
          }
        }
      }
    } else if (arch.dataflow == Dataflow::IS) {
      const auto kf = reduction_folds(layer, R, align);
      for (int64_t m0 = 0; m0 < layer.m; m0 += C) {
        const int64_t m_len = std::min(C, layer.m - m0);
        // Channel tiles: a fold streams at most `words` output channels.
        for (int64_t n0 = 0; n0 < layer.n; n0 += words) {
          const int64_t n_len = std::min(words, layer.n - n0);
          for (std::size_t i = 0; i < kf.size(); ++i) {
            SystolicFold f{g, m0, m_len, n0, n_len, kf[i], kf[i].length, m_len, n_len};
            add(f, o_base + n0, n_len, i + 1 == kf.size());
          }
        }
      }
    } else {
      const auto segs = reduction_segments(layer);
      for (int64_t m0 = 0; m0 < layer.m; m0 += R) {
        const int64_t m_len = std::min(R, layer.m - m0);
        for (int64_t n0 = 0; n0 < layer.n; n0 += C) {
          const int64_t n_len = std::min(C, layer.n - n0);
          for (std::size_t i = 0; i < segs.size(); ++i) {
            SystolicFold f{g, m0, m_len, n0, n_len, segs[i], m_len, n_len, segs[i].length};
            add(f, o_base + n0, n_len, i + 1 == segs.size());
          }
        }
      }
    }
  }
  return folds;
}

}  // namespace tilescale::map
