// Test harness for integration tests: runs the real regdisk binary and the
// real peer tools, with helpers to make disks and look at results.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "util/fs.h"
#include "util/subprocess.h"

namespace regdisk::testing {

// Runs a command; fails the test (not the process) if it cannot start.
ProcessResult RunCmd(const std::vector<std::string>& argv);
// Runs the regdisk binary with `args`, with --store set to `store` if given.
ProcessResult Regdisk(const std::vector<std::string>& args);
// sha256 hex of a file's contents.
std::string Sha256File(const std::string& path);
// Number of entries in a directory (0 if missing).
int CountEntries(const std::string& dir);
// A raw file of `size` bytes, all holes except `data` written at each offset.
void MakeSparseFile(const std::string& path, uint64_t size, const std::vector<uint64_t>& offsets,
                    const std::string& data);
// Starts `argv` without waiting, stdout and stderr appended to `log`; -1 if
// it cannot start. The child gets no REGISTRY_* variables (the registry would
// read them as its configuration, and no other child needs them).
pid_t SpawnLogged(const std::vector<std::string>& argv, const std::string& log);
// Waits up to `seconds` for the server `*pid` (started by SpawnLogged with
// its output in `log`) to write its port into `port_file`; returns
// "127.0.0.1:PORT". On failure returns "" with `*error` holding the
// server's output, and *pid is -1 if it exited.
std::string WaitForPortFile(pid_t* pid, const std::string& port_file, const std::string& log, int seconds,
                            std::string* error);
// True if `program` is on PATH.
bool HaveProgram(const std::string& program);
// A printable dump of a result for failure messages.
std::string Describe(const ProcessResult& r);

// Bytes allocated under `dir` (holes excluded); files vanishing meanwhile
// are skipped.
uint64_t BytesUnder(const std::string& dir);
// A run of the regdisk binary with its bounds measured: the wall time, and
// the most bytes under `dir` that a sampler saw, every 10 ms, while it ran.
struct Measured {
  ProcessResult result;
  double seconds = 0;
  uint64_t peak_bytes = 0;
};
Measured RegdiskMeasured(const std::vector<std::string>& args, const std::string& dir);
// A refusal as the CLI reports it: a non-zero exit (not a crash) and one
// line on stderr naming `cause`, with no control character in it. The one
// place that knows the CLI's exit codes.
void ExpectRefused(const ProcessResult& r, const std::string& cause);

}  // namespace regdisk::testing
