// Plain data types of the OCI image spec (and the Docker schema2 forms that
// registries still serve), with JSON decoding that validates and never
// throws. Decoding accepts both OCI and Docker media types; encoding always
// writes OCI.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "oci/digest.h"
#include "util/status.h"

namespace regdisk::oci {

// Largest manifest, index or config regdisk will read (Distribution's own
// manifest limit is 4 MiB).
inline constexpr uint64_t kMaxManifestBytes = 4 << 20;

using Annotations = std::map<std::string, std::string>;

struct Platform {
  std::string architecture;  // amd64, arm64, ...
  std::string os;            // linux
  std::string variant;       // v8, ... (optional)
  // "linux/amd64" or "linux/arm64/v8"
  static StatusOr<Platform> Parse(std::string_view s);
  static Platform Host();
  std::string str() const;
  // True when `this` (a wanted platform) accepts `candidate`; an empty
  // variant matches any variant.
  bool Matches(const Platform& candidate) const;
};

struct Descriptor {
  std::string media_type;
  Digest digest;
  uint64_t size = 0;
  Annotations annotations;
  std::optional<Platform> platform;  // only in an index
};

struct Manifest {
  std::string media_type;  // as received; kOciManifest when built here
  Descriptor config;
  std::vector<Descriptor> layers;
  Annotations annotations;
};

struct Index {
  std::string media_type;
  std::vector<Descriptor> manifests;
  Annotations annotations;
};

struct ImageConfig {
  std::string architecture, os, variant;
  std::string created;                      // RFC 3339
  std::vector<std::string> env;             // config.Env
  std::vector<std::string> entrypoint, cmd;
  std::string user;
  std::map<std::string, std::string> labels;
  std::vector<Digest> diff_ids;
  struct History {
    std::string created, created_by, comment;
    bool empty_layer = false;
  };
  std::vector<History> history;
};

bool IsManifestType(std::string_view media_type);
bool IsIndexType(std::string_view media_type);

// Decoders check required fields, types and digests; sizes must be >= 0.
StatusOr<Manifest> ParseManifest(std::string_view json);
StatusOr<Index> ParseIndex(std::string_view json);
StatusOr<ImageConfig> ParseImageConfig(std::string_view json);
// Reads only "mediaType" (or infers it from schemaVersion/fields).
StatusOr<std::string> SniffMediaType(std::string_view json);

// Canonical encoders (stable key order, no whitespace): the same value
// always gives the same bytes, hence the same digest.
std::string EncodeManifest(const Manifest& m);
std::string EncodeIndex(const Index& i);
std::string EncodeImageConfig(const ImageConfig& c);

// Picks the manifest for `want` from an index; errors list what is there.
StatusOr<Descriptor> SelectPlatform(const Index& index, const Platform& want);

}  // namespace regdisk::oci
