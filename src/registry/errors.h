// Registry answers turned into one-line Status messages that name the
// registry, the repository, what was being done and the cause:
//   registry 127.0.0.1:5000: repository vm/fedora: manifest "v9": MANIFEST_UNKNOWN: manifest unknown
// Text from the server is cut to one short line; secrets are scrubbed by
// Redact() before a Status leaves the package. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace regdisk::registry {

// The Status for an HTTP answer that was not the expected one. `body` may be
// the registry's JSON error document {"errors":[{"code","message"}]}; the
// Status code follows its first error code (UNAUTHORIZED, DENIED ->
// kUnauthorized; *_UNKNOWN -> kNotFound; TOOMANYREQUESTS, UNAVAILABLE ->
// kUnavailable; DIGEST_INVALID, SIZE_INVALID -> kCorrupt; ...), else the HTTP
// status (401/403 -> kUnauthorized, 404 -> kNotFound, 429/5xx ->
// kUnavailable, other 4xx -> kInvalidArgument).
Status ResponseError(const std::string& registry, const std::string& repository,
                     const std::string& what, long http_status, std::string_view body);

// "registry H: repository R: " (or "registry H: " without a repository).
std::string Prefix(const std::string& registry, const std::string& repository);

// Printable, single-line, at most `max` bytes: for any text a server sent.
std::string OneLine(std::string_view text, size_t max = 200);

// Replaces every occurrence of each non-empty secret by "***". Server text
// is redacted before it is cut to one line, so no half secret survives.
std::string RedactText(std::string_view text, const std::vector<std::string>& secrets);
Status Redact(const Status& status, const std::vector<std::string>& secrets);

}  // namespace regdisk::registry
