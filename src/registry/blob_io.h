// Internal to the registry package: the streaming blob reader and the
// chunked blob writer behind Repository::OpenBlob and CreateBlob.
#pragma once

#include <memory>
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

// HEAD: true when the repository has the blob.
StatusOr<bool> BlobExists(const BlobTarget& target, const oci::Digest& digest);
// GET, with the response headers in (404 is NotFound).
StatusOr<std::unique_ptr<oci::BlobReader>> OpenBlobReader(BlobTarget target, const oci::Digest& digest);
// Nothing is sent before the first chunk is full or Commit.
std::unique_ptr<oci::BlobWriter> NewBlobWriter(BlobTarget target);

}  // namespace regdisk::registry
