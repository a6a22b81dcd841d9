// Status and StatusOr<T>: the error convention at every module boundary.
//
// A Status is either OK or carries a code and a one-line message. Context is
// added while unwinding ("opening /x: no such file"), so the message a user
// finally sees names the bad input. Third-party exceptions are caught where
// the library is called and turned into a Status; nothing throws across a
// module boundary.
#pragma once

#include <cassert>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <utility>

namespace regdisk {

enum class Code {
  kOk = 0,
  kInvalidArgument,  // bad input from the user or from outside data
  kNotFound,
  kAlreadyExists,
  kCorrupt,          // data failed verification (digest, size, format)
  kUnsupported,      // valid but not something regdisk handles
  kIo,               // the operating system refused
  kUnauthorized,
  kUnavailable,      // a peer is down or timed out; may succeed later
  kInternal,
};

const char* CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy with "context: " in front of the message.
  Status Annotate(const std::string& context) const;
  std::string ToString() const { return ok() ? "OK" : message_; }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status OkStatus() { return Status(); }
Status InvalidArgument(std::string msg);
Status NotFound(std::string msg);
Status AlreadyExists(std::string msg);
Status Corrupt(std::string msg);
Status Unsupported(std::string msg);
Status Internal(std::string msg);
Status Unavailable(std::string msg);
Status Unauthorized(std::string msg);
// An I/O error from errno, e.g. IoError("opening /x", ENOENT) ->
// "opening /x: No such file or directory".
Status IoError(const std::string& what, int err);

// `s` in double quotes for an error message: quotes and backslashes escaped,
// bytes outside printable ASCII as \xNN (so the message stays one line
// whatever outside data holds), and cut after `max_shown` bytes with "...".
std::string Quote(std::string_view s, size_t max_shown = 100);
// `s` safe for a terminal and on one line: C0 controls (CR, LF, ESC...), DEL,
// C1 controls (U+0080..U+009F, e.g. the 8-bit CSI) and bytes that are not
// valid UTF-8 become \xNN; other UTF-8 text is kept. The result is at most
// `max_bytes` long (when that is over 40): a longer one is cut and ends
// with "... (N more bytes)".
std::string OneLine(std::string_view s, size_t max_bytes = SIZE_MAX);
// True if `s` is valid UTF-8 (C1 controls count as invalid, as in OneLine).
bool IsValidUtf8(std::string_view s);
// Names listed in a message are cut here: a layer may hold thousands, and a
// message is one line for a human.
inline constexpr size_t kMaxNamesListed = 5;
// The first `max_listed` names, each Quote()d, then "and N more":
// "\"a\", \"b\", \"c\" and 19997 more".
std::string QuoteList(const std::vector<std::string>& names, size_t max_listed = kMaxNamesListed);

template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status status) : status_(std::move(status)) { assert(!status_.ok()); }
  StatusOr(T value) : value_(std::move(value)) {}

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace regdisk

#define REGDISK_CONCAT_INNER(a, b) a##b
#define REGDISK_CONCAT(a, b) REGDISK_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                     \
  do {                                            \
    ::regdisk::Status _st = (expr);               \
    if (!_st.ok()) return _st;                    \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(REGDISK_CONCAT(_so_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()
