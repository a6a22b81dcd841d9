// Internal to the registry package: the streaming blob reader and the
// chunked blob writer behind Repository::OpenBlob and CreateBlob.
#pragma once

#include <memory>
#include <optional>
#include <string_view>
#include <string>
#include <vector>

#include "oci/store.h"
#include "registry/connection.h"

namespace regdisk::registry {

// Where blob requests go.
struct BlobTarget {
  std::shared_ptr<Registry> registry;
  std::string repository;
  std::vector<std::string> scopes;
  std::string BlobPath(const oci::Digest& d) const { return "/v2/" + repository + "/blobs/" + d.str(); }
};

// Distribution wants the "delete" action for every DELETE, also of an upload.
inline std::string DeleteScope(const std::string& repository) { return "repository:" + repository + ":delete"; }

// Decimal digits only (at most 19, so no overflow); nullopt otherwise.
std::optional<uint64_t> ParseSize(std::string_view s);

// A Content-Range header value, "bytes FIRST-LAST/TOTAL" (outside data:
// nullopt unless FIRST <= LAST < TOTAL, each a ParseSize number).
struct ContentRange {
  uint64_t first = 0, last = 0, total = 0;
};
std::optional<ContentRange> ParseContentRange(std::string_view s);

// HEAD: true when the repository has the blob.
StatusOr<bool> BlobExists(const BlobTarget& target, const oci::Digest& digest);
// GET, with the response headers in (404 is NotFound): ranged in parallel
// when Options::parallel > 1 (OpenRangedReader), else one stream.
StatusOr<std::unique_ptr<oci::BlobReader>> OpenBlobReader(BlobTarget target, const oci::Digest& digest);
// One stream (blob_reader.cc); `first`, when given, is an open 200 answer
// for the whole blob to read from.
StatusOr<std::unique_ptr<oci::BlobReader>> OpenStreamReader(BlobTarget target, const oci::Digest& digest,
                                                             std::unique_ptr<http::Stream> first);
// `parallel` Range requests at a time (ranged_reader.cc); one stream when
// the registry answers the first Range request with the whole blob (200).
StatusOr<std::unique_ptr<oci::BlobReader>> OpenRangedReader(BlobTarget target, const oci::Digest& digest,
                                                             int parallel);
// Exactly `len` bytes at `offset` of the blob into `buf`: one Range request
// whose answer must be a 206 with exactly that Content-Range and length,
// resumed and retried as a segment of OpenRangedReader is. Unverified: the
// caller checks the bytes (Repository::ReadAt).
Status ReadBlobRange(const BlobTarget& target, const oci::Digest& digest, uint64_t offset, char* buf, size_t len);
// Nothing is sent before the first chunk is full or Commit.
std::unique_ptr<oci::BlobWriter> NewBlobWriter(BlobTarget target);

}  // namespace regdisk::registry
