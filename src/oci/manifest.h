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
// The default largest disk (--max-disk-size): 64 GiB is what cloud images
// are sized for (a few GiB of data, grown by cloud-init after boot) with
// room to spare; a node that gives one image more must say so.
inline constexpr uint64_t kDefaultMaxDiskSize = 64ull << 30;

// Index levels above an image manifest that regdisk follows: real images
// use one (an index of platform manifests), rarely two; more is a cycle or
// an attack.
inline constexpr int kMaxIndexDepth = 4;
// Distinct manifests and indexes one operation (a copy, a gc walk) reads:
// the largest public multi-platform indexes list well under 100 (platforms
// plus attestations). An index that lists the same child over and over
// costs one fetch per distinct digest anyway.
inline constexpr size_t kMaxManifestsPerOperation = 256;
// Their bytes together: a copy holds the whole tree before it writes
// anything (so a refused tree leaves nothing behind); real trees are a few
// hundred KiB, and this keeps a hostile one from holding 256 x 4 MiB.
inline constexpr uint64_t kMaxManifestBytesPerOperation = 64 << 20;
// InvalidArgument once `count` manifests or `bytes` of them are over the
// limits above.
Status CheckManifestBudget(size_t count, uint64_t bytes);

using Annotations = std::map<std::string, std::string>;

struct Platform {
  std::string architecture;  // amd64, arm64, ...
  std::string os;            // linux
  std::string variant;       // v8, ... (optional)
  // "linux/amd64" or "linux/arm64/v8"; uname names are mapped to Go's
  // (x86_64 -> amd64, aarch64 -> arm64, armv7l -> arm/v7).
  static StatusOr<Platform> Parse(std::string_view s);
  // linux and the machine's architecture, in Go's names.
  static Platform Host();
  std::string str() const;
  // True when `this` (a wanted platform) accepts `candidate`; an empty
  // variant matches any variant, and arm64 without a variant is arm64/v8.
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
// Input over kMaxManifestBytes or nested over 64 levels is refused. A
// missing mediaType is taken as OCI; unknown fields are ignored (so are
// config fields ImageConfig has no member for). Errors read
// `manifest: layers[2].digest: invalid digest "x": ...`.
StatusOr<Manifest> ParseManifest(std::string_view json);
StatusOr<Index> ParseIndex(std::string_view json);
StatusOr<ImageConfig> ParseImageConfig(std::string_view json);
// One descriptor as a JSON object (e.g. saved beside a cache entry).
StatusOr<Descriptor> ParseDescriptor(std::string_view json);
// A size annotation's value (io.regdisk.disk.virtual-size): decimal digits
// only, no sign, no overflow. The error names `key` and quotes the value.
StatusOr<uint64_t> ParseSizeAnnotation(std::string_view key, std::string_view value);
// Refuses an image whose disks are declared larger than `max_disk_size`
// (--max-disk-size) before any of its blobs is fetched: a layer larger than
// that, or a disk virtual-size annotation over it or not a number.
Status CheckDiskLimits(const Manifest& m, uint64_t max_disk_size);
// Reads only "mediaType" (or infers it from schemaVersion/fields).
StatusOr<std::string> SniffMediaType(std::string_view json);

// Canonical encoders (stable key order, no whitespace): the same value
// always gives the same bytes, hence the same digest. Empty optional fields
// are left out; the mediaType written is always the OCI one (descriptors
// keep theirs, so Docker layer types stay as they were).
std::string EncodeManifest(const Manifest& m);
std::string EncodeIndex(const Index& i);
std::string EncodeImageConfig(const ImageConfig& c);
std::string EncodeDescriptorJson(const Descriptor& d);

// Picks the first manifest for `want` from an index (NotFound, listing the
// platforms there, when none matches).
StatusOr<Descriptor> SelectPlatform(const Index& index, const Platform& want);
// The same refusal for a single image whose config names `have`: NotFound
// unless `want` accepts it, so that an arm64 image is refused on amd64
// whether or not an index lists it.
Status CheckPlatform(const Platform& have, const Platform& want);

}  // namespace regdisk::oci
