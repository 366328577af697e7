// What the mapper maps: each Conv/Gemm layer as grouped GEMMs with its scale-block structure.
// A layer computes, per group g, out[m][n] = sum_k act[m][k] * w[k][n] with the reduction index in
// hardware order k = (ky * kw + kx) * cin_g + c (DESIGN.md section 6). Workloads come from a
// quantized bundle, or from SCALE-Sim's topology / GEMM CSV files (dense, one scale per layer).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tilescale::quant {
struct QuantizedModel;
}

namespace tilescale::map {

struct LayerWorkload {
  std::string name;                  // layer (graph node or CSV row) name
  bool is_conv = true;               // Conv (else fully connected)
  int64_t groups = 1;                // independent GEMMs (conv groups; depthwise: one per channel)
  int64_t m = 0;                     // output pixels per image: GEMM rows, per group
  int64_t n = 0;                     // output channels per group: GEMM columns
  int64_t k = 0;                     // reduction length per group: kernel * cin_g
  int64_t kernel = 1;                // kh * kw
  int64_t cin_g = 0;                 // input channels per group
  int64_t ofmap_h = 1, ofmap_w = 1;  // output spatial size, pixels
  int w_bits = 8;                    // weight code bits
  int a_bits = 8;                    // input activation code bits
  bool act_signed = false;           // input activation grid is signed
  // Scale blocks (tilescale::quant::BlockGrid): block of (output channel o, reduction index k) is
  // out_group[o] * red_groups + red_group[k]; o runs over all groups * n output channels.
  std::vector<int64_t> out_group;     // [groups * n]
  std::vector<int64_t> red_group;     // [k]
  int64_t out_groups = 1;             // distinct output-channel groups
  int64_t red_groups = 1;             // distinct reduction groups
  std::string granularity = "layer";  // as the quantizer names it

  int64_t macs() const { return groups * m * n * k; }  // per image
};

// One workload per Conv/Gemm layer of a bundle, in execution order.
std::vector<LayerWorkload> workloads_from_model(const quant::QuantizedModel& model);

// SCALE-Sim v2 topology CSV: a header line, then "name, IFMAP h, IFMAP w, filter h, filter w,
// channels, filters, stride[, stride w]," per layer (valid convolution: ofmap = ceil((ifmap -
// filter + stride) / stride)); a name containing "DP" is depthwise (one group per channel), as
// SCALE-Sim expands it. Dense layers with one scale; operand bits are given.
std::vector<LayerWorkload> read_scalesim_topology(const std::string& path, int a_bits, int w_bits);
// SCALE-Sim v2 GEMM CSV: a header line, then "name, M, N, K," per layer.
std::vector<LayerWorkload> read_scalesim_gemm(const std::string& path, int a_bits, int w_bits);

}  // namespace tilescale::map
