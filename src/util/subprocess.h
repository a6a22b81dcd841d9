// Runs a helper program (qemu-img) without a shell: argv is passed as is,
// so no argument is ever interpreted by /bin/sh.
#pragma once

#include <string>
#include <vector>

#include "util/status.h"

namespace regdisk {

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string out;     // stdout, capped at the limit below
  std::string err;     // stderr, capped likewise
};

struct ProcessLimits {
  int cpu_seconds = 0;          // RLIMIT_CPU; 0: none
  uint64_t address_space = 0;   // RLIMIT_AS in bytes; 0: none
  size_t output_limit = 1 << 20;
};

// Starts argv[0] (looked up in PATH) and waits for it. Fails only when the
// program cannot be started; a non-zero exit is reported in the result.
StatusOr<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                   const ProcessLimits& limits = {});

// Like RunProcess but a non-zero exit becomes an error carrying the last
// line of stderr.
StatusOr<ProcessResult> RunChecked(const std::vector<std::string>& argv,
                                   const ProcessLimits& limits = {});

}  // namespace regdisk
