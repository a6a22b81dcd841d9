#include "oci/digest.h"

#include <cassert>

#include "util/sha256.h"

namespace regdisk::oci {

StatusOr<Digest> Digest::Parse(std::string_view s) {
  constexpr std::string_view kPrefix = "sha256:";
  auto bad = [&](const char* why) {
    std::string shown(s.substr(0, 80));
    return InvalidArgument("invalid digest \"" + shown + "\": " + why);
  };
  auto colon = s.find(':');
  if (colon == std::string_view::npos) return bad("expected algorithm:hex");
  if (s.substr(0, colon + 1) != kPrefix) return bad("unsupported algorithm (only sha256)");
  std::string_view hex = s.substr(kPrefix.size());
  if (hex.size() != 64) return bad("sha256 needs 64 hex digits");
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return bad("not lowercase hex");
  }
  return Digest(std::string(hex));
}

Digest Digest::FromHex(std::string_view hex) {
  assert(hex.size() == 64);
  return Digest(std::string(hex));
}

Digest Digest::Of(std::string_view data) { return Digest(Sha256::HexOf(data)); }

}  // namespace regdisk::oci
