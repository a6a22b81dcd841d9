// One registry repository as an oci::Store (Distribution API v2):
//   HasBlob      HEAD /v2/NAME/blobs/DIGEST
//   OpenBlob     GET, following redirects to storage; streamed with bounded
//                memory, resumed with a Range request after a broken
//                connection, verified (size and digest) at the end
//   ReadAt       GET with one Range header (see ReadBlobRange in blob_io.h)
//   CreateBlob   POST /v2/NAME/blobs/uploads/, PATCH chunks, PUT ?digest=
//                (see blob_writer.cc); small blobs in one PUT
//   DeleteBlob   DELETE /v2/NAME/blobs/DIGEST
//   GetManifest  GET /v2/NAME/manifests/REF accepting OCI and Docker
//                manifests and indexes; verified against the digest asked
//                for or the Docker-Content-Digest; at most kMaxManifestBytes
//   PutManifest  PUT with the media type as Content-Type; by digest when the
//                tag is empty
//   ListTags     GET /v2/NAME/tags/list, following Link pagination. Only the
//                names: the descriptors are empty (a HEAD per tag would cost
//                a request each; GetManifest gives the rest)
//   MountBlob    POST /v2/NAME/blobs/uploads/?mount=DIGEST&from=OTHER
//   TryReuseBlob MountBlob, for a source that is another repository on the
//                same registry
//
// Thread-safety: every method may be called from several threads at once
// (for different blobs); each BlobReader and BlobWriter is used by one
// thread at a time. Readers and writers keep the Registry alive and may
// outlive the Repository.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "oci/reference.h"
#include "oci/store.h"
#include "registry/registry.h"

namespace regdisk::registry {

struct Call;  // registry/connection.h

class Repository : public oci::Store {
 public:
  // Connects to ref.registry (see Registry::Connect) and opens ref.repository
  // on it; the tag and digest of `ref` are not used.
  static StatusOr<std::unique_ptr<Repository>> Open(const oci::Reference& ref, const Options& options);
  // Opens `name` on a connected registry, sharing its connections and tokens.
  // The caller ensures `name` is a valid repository name (oci::Reference
  // checks it); it becomes part of request paths.
  Repository(std::shared_ptr<Registry> registry, std::string name);

  // {"docker://HOST", NAME}
  oci::StoreId id() const override;
  StatusOr<bool> HasBlob(const oci::Digest& digest) override;
  StatusOr<std::unique_ptr<oci::BlobReader>> OpenBlob(const oci::Digest& digest) override;
  Status ReadAt(const oci::Digest& digest, uint64_t offset, char* buf, size_t len) override;
  StatusOr<std::unique_ptr<oci::BlobWriter>> CreateBlob() override;
  Status DeleteBlob(const oci::Digest& digest) override;
  bool TryReuseBlob(const oci::Descriptor& desc, const oci::StoreId& source) override;
  StatusOr<oci::RawManifest> GetManifest(const std::string& tag_or_digest) override;
  Status PutManifest(const oci::RawManifest& manifest, const std::string& tag) override;
  StatusOr<std::vector<std::pair<std::string, oci::Descriptor>>> ListTags() override;

  // Makes the blob `digest` of `from_repository` (same registry) part of
  // this repository without uploading it. NotFound when the registry
  // declines (it lacks the blob, or this user may not read it there).
  Status MountBlob(const oci::Digest& digest, const std::string& from_repository);

  const std::string& name() const { return name_; }
  Registry& registry() { return *registry_; }

 private:
  // The token scopes for this repository; push once anything was written.
  std::vector<std::string> Scopes(bool push);
  Call MakeCall(std::string method, std::string path, bool push, std::string what);

  std::shared_ptr<Registry> registry_;
  std::string name_;
  std::atomic<bool> pushing_{false};
};

}  // namespace regdisk::registry
