# Sourced by the benchmark scripts: prints the CPU model, CPU count and the vector instruction
# sets that matter to tilescale's kernels and the peers (oneDNN, ONNX Runtime), so a figure is
# read with the machine it came from (the development machines differ between sessions).
print_cpu_info() {
  local cpu isa
  cpu=$(sed -n 's/^model name\s*:\s*//p' /proc/cpuinfo | head -n 1)
  isa=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' |
        grep -E '^(avx2|avx512f|avx512bw|avx512_vnni|avx512_bf16|amx_tile|avx_vnni)$' | tr '\n' ' ')
  echo "CPU: $cpu, $(nproc) CPUs; vector ISA: ${isa:-none above SSE}"
}
