#include "peer/request.h"

#include <algorithm>
#include <cctype>

#include "layer/disk_index.h"
#include "peer/protocol.h"

namespace regdisk::peer {
namespace {

ParseResult Refuse(int status, std::string reason) {
  ParseResult r;
  r.kind = ParseResult::Kind::kError;
  r.status = status;
  r.reason = std::move(reason);
  return r;
}

// RFC 9110's tchar: the bytes of a method or a header name.
bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

// Visible ASCII, spaces and tabs: a header value (no controls, no 8-bit).
bool IsFieldValue(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == '\t' || (c >= 0x20 && c < 0x7f); });
}

bool IsLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// True when the comma-separated `list` holds `token` (any case).
bool ListHas(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    if (EqualsNoCase(Trim(list.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// What the head's headers say, once checked.
struct Head {
  bool host = false, length = false, close = false, keep_alive = false, expect_continue = false;
  uint64_t content_length = 0;
};

// One header line (without its CRLF) into `head`; a refusal or kNeedMore.
ParseResult Header(std::string_view line, Head& head) {
  if (line.front() == ' ' || line.front() == '\t') return Refuse(400, "a folded header line (obs-fold)");
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || !IsToken(line.substr(0, colon))) {
    return Refuse(400, "a malformed header line " + Quote(line, 40));
  }
  std::string_view name = line.substr(0, colon), value = Trim(line.substr(colon + 1));
  if (!IsFieldValue(value)) return Refuse(400, "a header value with control or 8-bit bytes");
  if (EqualsNoCase(name, "Host")) {
    if (head.host) return Refuse(400, "two Host headers");
    head.host = true;
  } else if (EqualsNoCase(name, "Content-Length")) {
    // Digits only and one value: "1, 1", "+1" or two headers are how
    // requests are smuggled past a proxy that reads them otherwise.
    if (head.length) return Refuse(400, "two Content-Length headers");
    if (value.empty() || !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return Refuse(400, "a Content-Length that is not a number: " + Quote(value, 40));
    }
    head.length = true;
    if (value.size() > 19) return Refuse(413, "a Content-Length over " + std::to_string(kMaxHaveBody));
    head.content_length = std::stoull(std::string(value));
    if (head.content_length > kMaxHaveBody) {
      return Refuse(413, "a Content-Length over " + std::to_string(kMaxHaveBody));
    }
  } else if (EqualsNoCase(name, "Transfer-Encoding")) {
    return Refuse(400, "a Transfer-Encoding (only Content-Length bodies are read)");
  } else if (EqualsNoCase(name, "Connection")) {
    head.close = head.close || ListHas(value, "close");
    head.keep_alive = head.keep_alive || ListHas(value, "keep-alive");
  } else if (EqualsNoCase(name, "Expect")) {
    head.expect_continue = EqualsNoCase(value, "100-continue");
  }
  return ParseResult{};
}

}  // namespace

ParseResult ParseRequest(std::string_view bytes) {
  size_t head_end = bytes.find("\r\n\r\n");
  if (head_end == std::string_view::npos) {
    if (bytes.size() >= kMaxHeadBytes) {
      return Refuse(431, "a request head over " + std::to_string(kMaxHeadBytes) + " bytes");
    }
    return ParseResult{};
  }
  if (head_end + 4 > kMaxHeadBytes) {
    return Refuse(431, "a request head over " + std::to_string(kMaxHeadBytes) + " bytes");
  }
  std::string_view head_text = bytes.substr(0, head_end + 2);  // each line with its CRLF
  std::vector<std::string_view> lines;
  while (!head_text.empty()) {
    size_t crlf = head_text.find("\r\n");
    lines.push_back(head_text.substr(0, crlf));
    head_text.remove_prefix(crlf + 2);
  }
  if (lines.size() - 1 > kMaxHeaderCount) {
    return Refuse(431, "more than " + std::to_string(kMaxHeaderCount) + " header lines");
  }
  for (std::string_view line : lines) {
    if (line.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
      return Refuse(400, "a bare CR, LF or NUL in the request head");
    }
  }

  // The request line: exactly two single spaces.
  std::string_view line = lines[0];
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Refuse(400, "a malformed request line " + Quote(line, 60));
  }
  std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                   version = line.substr(sp2 + 1);
  if (!IsToken(method)) return Refuse(400, "a malformed method " + Quote(method, 20));
  bool http11 = version == "HTTP/1.1";
  if (!http11 && version != "HTTP/1.0") return Refuse(400, "not HTTP/1.0 or 1.1: " + Quote(version, 20));
  if (target.empty() || target.front() != '/' ||
      !std::all_of(target.begin(), target.end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
    return Refuse(400, "a target that is not an origin-form path: " + Quote(target, 60));
  }

  Head head;
  for (size_t i = 1; i < lines.size(); ++i) {
    ParseResult r = Header(lines[i], head);
    if (r.kind == ParseResult::Kind::kError) return r;
  }
  if (http11 && !head.host) return Refuse(400, "an HTTP/1.1 request without a Host header");

  ParseResult r;
  Request& req = r.request;
  if (method == "GET") {
    req.method = Method::kGet;
  } else if (method == "HEAD") {
    req.method = Method::kHead;
  } else if (method == "POST") {
    req.method = Method::kPost;
    if (!head.length) return Refuse(411, "a POST without a Content-Length");
  } else {
    return Refuse(405, "the method " + Quote(method, 20));
  }
  req.target = std::string(target);
  req.keep_alive = http11 ? !head.close : head.keep_alive && !head.close;
  const size_t body_at = head_end + 4;
  if (bytes.size() - body_at < head.content_length) {
    r.kind = ParseResult::Kind::kNeedMore;
    r.expect_continue = head.expect_continue;
    r.request = Request{};
    return r;
  }
  req.body = std::string(bytes.substr(body_at, head.content_length));
  r.kind = ParseResult::Kind::kDone;
  r.consumed = body_at + head.content_length;
  return r;
}

Route RouteTarget(std::string_view target) {
  Route r;
  if (target == kHavePath) {
    r.kind = Route::Kind::kHave;
  } else if (target == kHealthPath) {
    r.kind = Route::Kind::kHealth;
  } else if (target.size() == sizeof(kChunkPathPrefix) - 1 + kDigestHexBytes &&
             target.substr(0, sizeof(kChunkPathPrefix) - 1) == kChunkPathPrefix) {
    std::string_view hex = target.substr(sizeof(kChunkPathPrefix) - 1);
    if (IsLowerHex(hex)) {
      r.kind = Route::Kind::kChunk;
      r.digest = layer::ShaFromHex(hex);
    }
  }
  return r;
}

StatusOr<std::vector<std::array<uint8_t, 32>>> ParseHaveBody(std::string_view body) {
  std::vector<std::array<uint8_t, 32>> out;
  while (!body.empty()) {
    if (out.size() == kMaxHaveDigests) {
      return InvalidArgument("more than " + std::to_string(kMaxHaveDigests) + " digests");
    }
    if (body.size() < kDigestHexBytes + 1 || body[kDigestHexBytes] != '\n' ||
        !IsLowerHex(body.substr(0, kDigestHexBytes))) {
      return InvalidArgument("a line that is not 64 lowercase hex digits: " +
                             Quote(body.substr(0, std::min(body.find('\n'), kDigestHexBytes + 1)), 80));
    }
    out.push_back(layer::ShaFromHex(body.substr(0, kDigestHexBytes)));
    body.remove_prefix(kDigestHexBytes + 1);
  }
  return out;
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

}  // namespace regdisk::peer
