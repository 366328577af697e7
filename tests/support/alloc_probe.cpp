// Replaces the global operator new/delete (plain forms; the array and nothrow forms forward to
// them by the standard's rules) with malloc/free plus a record of the largest request.
#include "support/alloc_probe.h"

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<bool> armed{false};
std::atomic<std::size_t> largest{0};
}  // namespace

namespace tilescale::test {
LargestAllocation::LargestAllocation() {
  largest = 0;
  armed = true;
}
LargestAllocation::~LargestAllocation() { armed = false; }
std::size_t LargestAllocation::bytes() const { return largest; }
}  // namespace tilescale::test

void* operator new(std::size_t n) {
  if (armed.load(std::memory_order_relaxed)) {
    std::size_t seen = largest.load(std::memory_order_relaxed);
    while (n > seen && !largest.compare_exchange_weak(seen, n)) {
    }
  }
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
