#include "util/progress.h"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

#include "util/status.h"

namespace regdisk {
namespace {
int g_forced = -1;  // -1: decide by isatty(stdout)
}

std::string HumanBytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", n) : fmt::format("{:.1f} {}", v, units[u]);
}

void Progress::SetEnabled(bool on) { g_forced = on ? 1 : 0; }

Progress::Progress(std::string label, uint64_t total)
    : label_(OneLine(label)),
      total_(total),
      enabled_(g_forced >= 0 ? g_forced == 1 : ::isatty(STDOUT_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() { Done(); }

void Progress::Add(uint64_t n) {
  done_ += n;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  if (now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  Draw(false);
}

void Progress::Done() {
  if (!enabled_) return;
  std::lock_guard lock(mu_);
  if (finished_) return;
  finished_ = true;
  Draw(true);
}

void Progress::Draw(bool final) {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  uint64_t done = done_;
  std::string rate = secs > 0 ? HumanBytes(static_cast<uint64_t>(done / secs)) + "/s" : "";
  std::string line;
  if (total_ > 0) {
    line = fmt::format("{}  {} / {}  {:3.0f}%  {}", label_, HumanBytes(done), HumanBytes(total_),
                       100.0 * static_cast<double>(done) / static_cast<double>(total_), rate);
  } else {
    line = fmt::format("{}  {}  {}", label_, HumanBytes(done), rate);
  }
  std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace regdisk
