// Small synthetic layers with a chosen block structure, for the mapping tests.
#pragma once

#include <cstdint>
#include <string>

#include "tilescale/map/arch_config.h"
#include "tilescale/map/workload.h"

namespace tilescale::test {

// A conv layer of `groups` groups, each m x n x (kernel * cin_g), with blocks of bo output
// channels x bi input channels (the quantizer's BlockGrid rule: red_group = (k % cin_g) / bi).
// run > 0 gives mx-style blocks instead: bo = 1, red_group = k / run.
inline map::LayerWorkload make_layer(int64_t groups, int64_t m, int64_t n, int64_t kernel,
                                     int64_t cin_g, int64_t bo, int64_t bi, int64_t run = 0) {
  map::LayerWorkload w;
  w.name = "L";
  w.groups = groups;
  w.m = m;
  w.n = n;
  w.kernel = kernel;
  w.cin_g = cin_g;
  w.k = kernel * cin_g;
  w.granularity =
      run ? "mx:" + std::to_string(run) : "block:" + std::to_string(bo) + "x" + std::to_string(bi);
  for (int64_t o = 0; o < groups * n; ++o) w.out_group.push_back(run ? o : o / bo);
  for (int64_t k = 0; k < w.k; ++k) w.red_group.push_back(run ? k / run : (k % cin_g) / bi);
  w.out_groups = w.out_group.back() + 1;
  w.red_groups = 0;
  for (int64_t r : w.red_group) w.red_groups = std::max(w.red_groups, r + 1);
  return w;
}

inline map::ArchConfig systolic(int rows, int cols, map::Dataflow df, int regs = 1024) {
  map::ArchConfig a;
  a.name = "test";
  a.source = "test.json";
  a.kind = map::ArchKind::Systolic;
  a.rows = rows;
  a.cols = cols;
  a.dataflow = df;
  a.scale_regs_per_tile = regs;
  return a;
}

}  // namespace tilescale::test
