// Progress lines for long steps. Drawn on stderr, and only when stdout is a
// terminal (scripts and CI get quiet output). Thread-safe Add().
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace regdisk {

std::string HumanBytes(uint64_t n);

class Progress {
 public:
  // total == 0 means unknown. The label is drawn escaped (OneLine): it may
  // hold outside data.
  Progress(std::string label, uint64_t total);
  ~Progress();
  void Add(uint64_t n);
  void Done();
  // Forces progress on or off for this process (tests, --quiet).
  static void SetEnabled(bool on);

 private:
  void Draw(bool final);
  std::string label_;
  uint64_t total_;
  std::atomic<uint64_t> done_{0};
  bool enabled_, finished_ = false;
  std::mutex mu_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace regdisk
