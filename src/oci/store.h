// The store interface shared by the local OCI layout, the registry client and
// the node cache, so one copy routine serves push, pull and cache fill.
//
// Implementations must verify every blob against its digest before it is
// visible to readers, and publish manifests and tags atomically.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "oci/digest.h"
#include "oci/manifest.h"
#include "util/status.h"

namespace regdisk::oci {

// Sequential reader of one blob. Read returns 0 at the end.
class BlobReader {
 public:
  virtual ~BlobReader() = default;
  virtual StatusOr<size_t> Read(void* buf, size_t len) = 0;
  virtual uint64_t size() const = 0;
};

// A blob being written. Write may be called any number of times; Commit
// hashes what was written, checks it against `expected` when given, and only
// then makes the blob visible. Destroying an uncommitted writer discards it.
class BlobWriter {
 public:
  virtual ~BlobWriter() = default;
  virtual Status Write(const void* data, size_t len) = 0;
  virtual StatusOr<Descriptor> Commit(const std::string& media_type,
                                      const std::optional<Digest>& expected) = 0;
};

class Store {
 public:
  virtual ~Store() = default;
  virtual StatusOr<bool> HasBlob(const Digest& digest) = 0;
  virtual StatusOr<std::unique_ptr<BlobReader>> OpenBlob(const Digest& digest) = 0;
  virtual StatusOr<std::unique_ptr<BlobWriter>> CreateBlob() = 0;

  // Tags name manifests (or indexes). Tag() replaces an existing tag.
  virtual StatusOr<Descriptor> Resolve(const std::string& tag) = 0;
  virtual Status Tag(const std::string& tag, const Descriptor& manifest) = 0;
  virtual StatusOr<std::vector<std::pair<std::string, Descriptor>>> ListTags() = 0;
};

// Helpers built on the interface.
StatusOr<std::string> ReadBlob(Store& store, const Digest& digest, uint64_t limit = 16 << 20);
StatusOr<Descriptor> WriteBlob(Store& store, std::string_view data, const std::string& media_type);

}  // namespace regdisk::oci
