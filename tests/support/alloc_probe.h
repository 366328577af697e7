// The largest single operator new request made while a LargestAllocation is alive. A test binary
// that links alloc_probe.cpp replaces the global operator new with one that records it, so a test
// can check that refusing a file which claims a huge array never asked for memory in proportion
// to the claim (a check of behaviour, not of timing).
#pragma once

#include <cstddef>

namespace tilescale::test {

class LargestAllocation {
 public:
  LargestAllocation();   // starts recording from zero
  ~LargestAllocation();  // stops recording
  LargestAllocation(const LargestAllocation&) = delete;
  LargestAllocation& operator=(const LargestAllocation&) = delete;
  std::size_t bytes() const;  // the largest request so far
};

}  // namespace tilescale::test
