// The peer server's HTTP/1.1 request parser (peer/protocol.h): pure
// functions over the bytes a client sent, bounded and strict. No library
// among regdisk's dependencies serves HTTP (libcurl is a client), so this is
// the smallest parser the protocol needs:
//
//   - request line `METHOD SP TARGET SP HTTP/1.x CRLF`, methods GET, HEAD
//     and POST only (others 405), origin-form targets only (a target not
//     starting with "/" — absolute-form, authority-form, "*" — is 400);
//   - header lines `NAME: VALUE CRLF` (no obs-fold, no bare LF), a Host
//     header on HTTP/1.1 as RFC 9112 requires;
//   - a body only by Content-Length (digits, one value); Transfer-Encoding
//     of any kind is refused (400), so there is no request smuggling
//     between framings;
//   - no percent-decoding: a target is one of the protocol's paths byte for
//     byte or it is unknown (RouteTarget), so nothing a client sends ever
//     becomes part of a file name.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace regdisk::peer {

// Request line plus headers, CRLFs included: the protocol's requests need
// a few hundred bytes; 8 KiB is what common servers allow, and bounds what
// a connection buffers before it is answered.
inline constexpr size_t kMaxHeadBytes = 8 << 10;
// Header lines per request: a client library sends fewer than ten.
inline constexpr size_t kMaxHeaderCount = 32;
// A request body (only POST /v1/have has one) is at most protocol.h's
// kMaxHaveBody; any larger Content-Length is refused (413) unread.

enum class Method { kGet, kHead, kPost };

struct Request {
  Method method = Method::kGet;
  std::string target;       // origin-form, as sent
  bool keep_alive = true;   // HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with "keep-alive"
  std::string body;         // Content-Length bytes
};

struct ParseResult {
  enum class Kind {
    kNeedMore,  // a prefix of a valid request: read more bytes
    kDone,      // `request` is complete; it used the first `consumed` bytes
    kError,     // refused: answer `status`, then close the connection
  };
  Kind kind = Kind::kNeedMore;
  Request request;
  size_t consumed = 0;
  // kNeedMore: the head is complete and asked "Expect: 100-continue"
  // (libcurl does for larger POST bodies): send 100 Continue once.
  bool expect_continue = false;
  int status = 0;      // kError: 400, 405, 411, 413 or 431
  std::string reason;  // kError: why, for the log (outside data Quote()d)
};

// Parses the request at the start of `bytes` (what a connection has read
// so far, which may hold the start of a pipelined next request).
ParseResult ParseRequest(std::string_view bytes);

// Which protocol path a target is, byte for byte.
struct Route {
  enum class Kind { kNone, kChunk, kHave, kHealth };
  Kind kind = Kind::kNone;
  std::array<uint8_t, 32> digest{};  // kChunk
};
Route RouteTarget(std::string_view target);

// The digests a /v1/have body asks about: lines of 64 lowercase hex, each
// ended by "\n", at most kMaxHaveDigests (InvalidArgument otherwise).
StatusOr<std::vector<std::array<uint8_t, 32>>> ParseHaveBody(std::string_view body);

// The status line's reason phrase of the codes the server answers.
const char* ReasonPhrase(int status);

}  // namespace regdisk::peer
