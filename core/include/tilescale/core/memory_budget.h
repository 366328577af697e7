// How much memory a run may spend on activations, checked before the executors allocate, so a
// model whose shapes claim gigabytes per image gets a clear error instead of an out-of-memory kill.
#pragma once

#include <cstdint>
#include <string>

namespace tilescale {

// The bytes the executors may use for activations and their scratch buffers:
// $TILESCALE_MEMORY_LIMIT if set (a byte count with an optional K, M or G suffix, powers of 1024),
// else half of the smallest of the machine's physical memory, the memory limits of this process's
// cgroups and their ancestors (v2 memory.max, v1 memory.limit_in_bytes) and RLIMIT_AS; the other
// half is left for weights, data sets and the rest of the system. Throws
// InputError("TILESCALE_MEMORY_LIMIT: ...") for a malformed value.
int64_t memory_budget_bytes();

// Human-readable size: "512 B", "3.2 MiB", "4.0 GiB".
std::string format_bytes(double bytes);

// Throws InputError("<file>: <what> needs <bytes>, more than the memory budget of <budget> ...")
// if bytes > memory_budget_bytes(). `bytes` is a double so callers can sum sizes that would
// overflow int64.
void check_memory_budget(const std::string& file, const std::string& what, double bytes);

// How many samples of `bytes_per_sample` each, for `workers` workers at once, fit the budget,
// capped at `wanted`; if not even one sample each fits, throws like check_memory_budget with
// what = "<what> for one sample on each of <workers> threads".
int64_t samples_within_budget(const std::string& file, const std::string& what,
                              double bytes_per_sample, int workers, int64_t wanted);

}  // namespace tilescale
