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
  // After a successful Commit: true when the store did not have the blob
  // before (so undoing a failed build may delete it), false when it did.
  virtual bool created() const = 0;
};

// A manifest or index as stored: its descriptor and its exact bytes (the
// digest is over these bytes, so they are never re-encoded in transit).
struct RawManifest {
  Descriptor descriptor;
  std::string bytes;
};

// Which store a Store is, so that stores recognise each other without
// knowing each other's types. `domain` is where blobs can be shared
// ("docker://HOST" for a registry, "oci:ROOT" for a layout directory),
// `repository` the repository in it (empty for a layout). Equal ids name
// the same store.
struct StoreId {
  std::string domain;
  std::string repository;
  bool operator==(const StoreId&) const = default;
};

// Blobs (configs, layers) and manifests (manifests, indexes) of one
// repository: a layout directory, a registry repository, the node cache.
class Store {
 public:
  virtual ~Store() = default;
  virtual StoreId id() const = 0;
  virtual StatusOr<bool> HasBlob(const Digest& digest) = 0;
  virtual StatusOr<std::unique_ptr<BlobReader>> OpenBlob(const Digest& digest) = 0;
  // Reads exactly `len` bytes of blob `digest` at `offset` into `buf` (a
  // registry: one HTTP Range request, retried; a layout: pread). Nothing
  // here checks the bytes: the caller verifies them against a digest of its
  // own (a v2 chunk index). Past the blob's end is an error. Stores that
  // cannot read at random keep this default (Unsupported).
  virtual Status ReadAt(const Digest& digest, uint64_t offset, char* buf, size_t len) {
    (void)offset, (void)buf, (void)len;
    return Unsupported("this store cannot read blob " + digest.str() + " at an offset");
  }
  virtual StatusOr<std::unique_ptr<BlobWriter>> CreateBlob() = 0;
  // Removes a blob (NotFound if absent). Used to undo a failed build or
  // transfer so that bad input leaves nothing behind.
  virtual Status DeleteBlob(const Digest& digest) = 0;
  // Asked before `desc`, a blob of the store `source`, is copied here: makes
  // it present without moving its bytes when this store can (a registry
  // mounts a blob from another repository on the same registry, as
  // containers/image's TryReusingBlob does). True when the blob is now here;
  // false when it must be copied (any failure to reuse is only that: the
  // copy that follows reports real errors). Stores that cannot reuse keep
  // this default.
  virtual bool TryReuseBlob(const Descriptor& desc, const StoreId& source) {
    (void)desc, (void)source;
    return false;
  }

  // A manifest by tag or by digest ("sha256:..."). The bytes are verified
  // against the digest whenever one is known, and bounded by
  // kMaxManifestBytes.
  virtual StatusOr<RawManifest> GetManifest(const std::string& tag_or_digest) = 0;
  // Stores a manifest (its blobs must be there already) and points `tag` at
  // it; with an empty tag it is stored by digest only. Replaces the tag.
  virtual Status PutManifest(const RawManifest& manifest, const std::string& tag) = 0;
  virtual StatusOr<std::vector<std::pair<std::string, Descriptor>>> ListTags() = 0;
};

// Opens the blob `desc` names as a reader bounded by the descriptor, the one
// way outside blob data enters: it fails at once when the store reports a
// size other than desc.size (a registry's Content-Length), never hands out a
// byte past desc.size (it fails on the first one instead), and in place of
// the final 0 fails when the content was short or its digest differs. So
// nothing beyond the descriptor's size is ever decompressed or written.
StatusOr<std::unique_ptr<BlobReader>> OpenBlob(Store& store, const Descriptor& desc);

// Helpers built on the interface.
// The whole blob `desc` names, read through OpenBlob(store, desc); refused
// before any read when desc.size is over `limit`.
StatusOr<std::string> ReadBlob(Store& store, const Descriptor& desc, uint64_t limit);
// The same for a blob known only by digest: the size is the store's.
StatusOr<std::string> ReadBlob(Store& store, const Digest& digest, uint64_t limit = 16 << 20);
StatusOr<Descriptor> WriteBlob(Store& store, std::string_view data, const std::string& media_type);
// Follows `root` down index levels to the image manifest for `want`,
// reading only the child SelectPlatform picks at each level (never the
// rest of the tree), at most kMaxIndexDepth levels. A manifest is returned
// as it is (anything else is InvalidArgument); its config's platform is the
// caller's to check (CheckPlatform).
StatusOr<RawManifest> SelectManifest(Store& store, RawManifest root, const Platform& want);
// Encodes and stores a manifest under `tag` (may be empty).
StatusOr<RawManifest> PutManifest(Store& store, const Manifest& m, const std::string& tag);

}  // namespace regdisk::oci
