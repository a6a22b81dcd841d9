// Fuzzes what a peer server reads from any client (peer/request.h): the
// request head and body, the target's route and a /v1/have body. Any bytes
// must be refused or parsed without crashing; a parsed request lies within
// the bytes and its bounds, a refusal has one of the protocol's statuses,
// and a chunk route is exactly the prefix and 64 lowercase hex digits.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "layer/disk_index.h"
#include "peer/protocol.h"
#include "peer/request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace regdisk::peer;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  ParseResult r = ParseRequest(bytes);
  switch (r.kind) {
    case ParseResult::Kind::kDone:
      if (r.consumed > size || r.consumed > kMaxHeadBytes + kMaxHaveBody) std::abort();
      if (r.request.body.size() > kMaxHaveBody || r.request.target.empty() || r.request.target[0] != '/') std::abort();
      break;
    case ParseResult::Kind::kError:
      if (r.status != 400 && r.status != 405 && r.status != 411 && r.status != 413 && r.status != 431) std::abort();
      if (r.reason.empty()) std::abort();
      break;
    case ParseResult::Kind::kNeedMore:
      if (size >= kMaxHeadBytes && bytes.find("\r\n\r\n") == std::string_view::npos) std::abort();
      break;
  }
  Route route = RouteTarget(bytes);
  if (route.kind == Route::Kind::kChunk &&
      std::string(bytes) != kChunkPathPrefix + regdisk::layer::ShaHex(route.digest)) {
    std::abort();
  }
  if (auto have = ParseHaveBody(bytes); have.ok() && have->size() * (kDigestHexBytes + 1) != size) std::abort();
  return 0;
}
