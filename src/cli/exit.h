// The one exit point of the regdisk command: every verb returns a Status,
// and Exit turns it into the process's exit code and, on failure, one line
// "regdisk: <message>" on stderr. The message may hold outside data (names
// from a manifest, a server's words), so it is escaped here, once, and cut
// to a bounded length.
#pragma once

#include <cstdio>
#include <string>

#include "util/status.h"

namespace regdisk::cli {

// Exit codes, one per Status code, so scripts can tell a refusal from a
// registry that is down. 2 is a command-line usage error (CLI11's parse
// errors); the table in `regdisk --help` and the README come from kExitCodes.
struct ExitCode {
  Code code;
  int exit;
  const char* meaning;
};
inline constexpr ExitCode kExitCodes[] = {
    {Code::kOk, 0, "success"},
    {Code::kInternal, 1, "internal error (a bug in regdisk)"},
    {Code::kInvalidArgument, 3, "invalid input, refused (arguments, specs, manifests, disks)"},
    {Code::kNotFound, 4, "not found (image, tag, blob, file, VM)"},
    {Code::kAlreadyExists, 5, "already exists"},
    {Code::kCorrupt, 6, "verification failed (digest, size, format)"},
    {Code::kUnsupported, 7, "valid, but not something regdisk handles"},
    {Code::kIo, 8, "the operating system refused (disk full, permissions on files)"},
    {Code::kUnauthorized, 9, "credentials missing or refused by the registry"},
    {Code::kUnavailable, 10, "a registry or service is down or timed out; may succeed later"},
};
inline constexpr int kUsageExit = 2;

// The longest error line printed, escapes included: a message built from
// hostile data (20,000 file names once made a 149 KB line) must still fit
// a terminal screen and a log line.
inline constexpr size_t kMaxErrorLineBytes = 1024;

// The exit code for `code`.
int ExitCodeFor(Code code);

// `s` as printed: "regdisk: " + the message, escaped (util OneLine) and at
// most about kMaxErrorLineBytes long, without the newline.
std::string ErrorLine(const Status& s);

// Prints ErrorLine(s) and a newline on `err` unless `s` is OK; returns
// ExitCodeFor(s.code()).
int Exit(const Status& s, std::FILE* err = stderr);

// The exit code table for --help.
std::string ExitCodeHelp();

}  // namespace regdisk::cli
