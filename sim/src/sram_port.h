// An SRAM port of SystolicSim (systolic.cpp) as a valid/ready stream of word lanes: a request (one
// activation row, one weight row, a fold's weights, one output row) leaves in beats of at most
// `width` words, one beat in each cycle the consumer is ready. The port knows nothing of the array
// or the fold schedule: how many cycles a request takes is whatever its handshakes add up to.
#pragma once

#include <algorithm>
#include <cstdint>

namespace tilescale::sim {

class SramPort {
 public:
  // width: words per beat (the ArchConfig's *_bw), 0 = unlimited (a request is one beat).
  explicit SramPort(int width = 0) : width_(width) {}

  // Starts a request of `words` words (>= 1); the previous one must be finished.
  void request(int64_t words) { left_ = words; }
  // A beat is on the port (the request has words left).
  bool valid() const { return left_ > 0; }
  // The request's words have all been moved.
  bool done() const { return left_ == 0; }
  // One clock cycle: if valid and the consumer is ready the beat fires and its word count is
  // returned, else 0 (a cycle with valid && !ready counts as back-pressure).
  int64_t cycle(bool ready) {
    if (!valid()) return 0;
    if (!ready) {
      ++blocked_;
      return 0;
    }
    const int64_t n = width_ > 0 ? std::min<int64_t>(width_, left_) : left_;
    left_ -= n;
    ++beats_;
    return n;
  }
  int64_t beats() const { return beats_; }      // beats fired since construction
  int64_t blocked() const { return blocked_; }  // cycles valid && !ready

 private:
  int width_ = 0;        // words per beat, 0 unlimited
  int64_t left_ = 0;     // words of the current request still to move
  int64_t beats_ = 0;    // handshakes, beats
  int64_t blocked_ = 0;  // back-pressured cycles, cycles
};

}  // namespace tilescale::sim
