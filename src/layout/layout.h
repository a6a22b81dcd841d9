// An OCI image layout directory (image-spec image-layout.md) as a Store:
//   ROOT/oci-layout          {"imageLayoutVersion": "1.0.0"}
//   ROOT/index.json          tags as org.opencontainers.image.ref.name
//   ROOT/blobs/sha256/<hex>  content, verified before it appears
// It is the local store for built images and the `oci:PATH` transport.
//
// Thread-safety and processes: blob writes need no lock (temp + rename of
// content-addressed files); index.json changes are serialised by an flock
// on ROOT/.regdisk.lock, so concurrent regdisk processes never lose a tag.
#pragma once

#include <memory>
#include <string>

#include "oci/store.h"

namespace regdisk::layout {

struct GcResult {
  int removed = 0;
  uint64_t bytes_freed = 0;
};

class Layout : public oci::Store {
 public:
  // Opens the layout at `root`; with `create`, makes it if missing.
  static StatusOr<std::unique_ptr<Layout>> Open(const std::string& root, bool create);

  oci::StoreId id() const override { return {"oci:" + root_, ""}; }

  StatusOr<bool> HasBlob(const oci::Digest& digest) override;
  StatusOr<std::unique_ptr<oci::BlobReader>> OpenBlob(const oci::Digest& digest) override;
  Status ReadAt(const oci::Digest& digest, uint64_t offset, char* buf, size_t len) override;
  StatusOr<std::unique_ptr<oci::BlobWriter>> CreateBlob() override;
  Status DeleteBlob(const oci::Digest& digest) override;
  StatusOr<oci::RawManifest> GetManifest(const std::string& tag_or_digest) override;
  Status PutManifest(const oci::RawManifest& manifest, const std::string& tag) override;
  StatusOr<std::vector<std::pair<std::string, oci::Descriptor>>> ListTags() override;

  // Removes a tag (NotFound if absent). Blobs stay until Gc().
  Status Untag(const std::string& tag);
  // Removes blobs that no tagged image references, and the temp files of
  // writers that died (Open removes those too): each blob writer holds an
  // flock on its temp file, so one whose lock is free and that is over a
  // minute old is garbage, while live writers, in this process or another,
  // are never touched.
  StatusOr<GcResult> Gc();

  const std::string& root() const { return root_; }
  std::string BlobPath(const oci::Digest& d) const { return root_ + "/blobs/sha256/" + d.hex(); }

 private:
  explicit Layout(std::string root) : root_(std::move(root)) {}
  StatusOr<oci::Index> ReadIndex();
  StatusOr<oci::Descriptor> FindTag(const std::string& tag);
  Status SetTag(const oci::RawManifest& m, const std::string& tag);
  Status WriteIndex(const oci::Index& index);
  std::string root_;
};

// The per-user default store: $REGDISK_STORE, else
// ${XDG_DATA_HOME:-$HOME/.local/share}/regdisk/store.
std::string DefaultStorePath();

}  // namespace regdisk::layout
