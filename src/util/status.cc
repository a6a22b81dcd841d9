#include "util/status.h"

#include <algorithm>
#include <cstring>

namespace regdisk {

const char* CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid argument";
    case Code::kNotFound: return "not found";
    case Code::kAlreadyExists: return "already exists";
    case Code::kCorrupt: return "corrupt";
    case Code::kUnsupported: return "unsupported";
    case Code::kIo: return "i/o error";
    case Code::kUnauthorized: return "unauthorized";
    case Code::kUnavailable: return "unavailable";
    case Code::kInternal: return "internal error";
  }
  return "unknown";
}

Status Status::Annotate(const std::string& context) const {
  if (ok()) return *this;
  return Status(code_, context + ": " + message_);
}

Status InvalidArgument(std::string m) { return Status(Code::kInvalidArgument, std::move(m)); }
Status NotFound(std::string m) { return Status(Code::kNotFound, std::move(m)); }
Status AlreadyExists(std::string m) { return Status(Code::kAlreadyExists, std::move(m)); }
Status Corrupt(std::string m) { return Status(Code::kCorrupt, std::move(m)); }
Status Unsupported(std::string m) { return Status(Code::kUnsupported, std::move(m)); }
Status Internal(std::string m) { return Status(Code::kInternal, std::move(m)); }
Status Unavailable(std::string m) { return Status(Code::kUnavailable, std::move(m)); }
Status Unauthorized(std::string m) { return Status(Code::kUnauthorized, std::move(m)); }

Status IoError(const std::string& what, int err) {
  Code code = err == ENOENT ? Code::kNotFound : Code::kIo;
  return Status(code, what + ": " + std::strerror(err));
}

namespace {

void AppendHex(std::string& out, unsigned char c) {
  const char* hex = "0123456789abcdef";
  out += {'\\', 'x', hex[c >> 4], hex[c & 15]};
}

// Length of the valid UTF-8 sequence at the start of `s` that is not a C1
// control, or 0.
size_t PrintableUtf8(std::string_view s) {
  auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned char c = b(0);
  size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
  if (n == 0 || s.size() < n) return 0;
  for (size_t i = 1; i < n; ++i) {
    if ((b(i) & 0xc0) != 0x80) return 0;
  }
  if (n == 2 && c == 0xc2 && b(1) < 0xa0) return 0;  // C1 controls
  if (n == 3 && ((c == 0xe0 && b(1) < 0xa0) || (c == 0xed && b(1) >= 0xa0))) return 0;  // overlong, surrogates
  if (n == 4 && ((c == 0xf0 && b(1) < 0x90) || (c == 0xf4 && b(1) >= 0x90))) return 0;  // overlong, > U+10FFFF
  return n;
}

// Escapes `s` into at most `budget` bytes; *used is how much of `s` fitted.
std::string Escape(std::string_view s, size_t budget, size_t* used) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c >= 0x80 ? PrintableUtf8(s.substr(i)) : (c >= 0x20 && c < 0x7f ? 1 : 0);
    std::string piece;
    if (n > 0) {
      piece = s.substr(i, n);
    } else {
      n = 1;
      AppendHex(piece, c);
    }
    if (out.size() + piece.size() > budget) break;
    out += piece;
    i += n;
  }
  *used = i;
  return out;
}

// Room kept for "... (N more bytes)" when a text is cut.
constexpr size_t kCutNoteBytes = 40;

}  // namespace

std::string OneLine(std::string_view s, size_t max_bytes) {
  size_t used = 0;
  std::string out = Escape(s, max_bytes, &used);
  if (used == s.size()) return out;
  out = Escape(s, max_bytes - std::min(max_bytes, kCutNoteBytes), &used);
  return out + "... (" + std::to_string(s.size() - used) + " more bytes)";
}

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : PrintableUtf8(s.substr(i));
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string QuoteList(const std::vector<std::string>& names, size_t max_listed) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < max_listed; ++i) {
    out += (i == 0 ? "" : ", ") + Quote(names[i]);
  }
  if (names.size() > max_listed) out += " and " + std::to_string(names.size() - max_listed) + " more";
  return out;
}

std::string Quote(std::string_view s, size_t max_shown) {
  std::string out = "\"";
  for (unsigned char c : s.substr(0, max_shown)) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      AppendHex(out, c);
    }
  }
  return out + (s.size() > max_shown ? "\"..." : "\"");
}

}  // namespace regdisk
