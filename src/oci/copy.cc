#include "oci/copy.h"

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace regdisk::oci {

namespace {

// One attempt at moving the blob's bytes.
Status Transfer(Store& src, const Descriptor& desc, Store& dst, const CopyOptions& options) {
  ASSIGN_OR_RETURN(auto reader, OpenBlob(src, desc));
  ASSIGN_OR_RETURN(auto writer, dst.CreateBlob());
  std::vector<char> buf(4 << 20);
  for (;;) {
    ASSIGN_OR_RETURN(size_t n, reader->Read(buf.data(), buf.size()));
    if (n == 0) break;
    RETURN_IF_ERROR(writer->Write(buf.data(), n));
    if (options.on_bytes) options.on_bytes(desc, n);
  }
  ASSIGN_OR_RETURN(Descriptor got, writer->Commit(desc.media_type, desc.digest));
  if (got.size != desc.size) return Corrupt("blob " + desc.digest.str() + " changed size in transit");
  return OkStatus();
}

}  // namespace

Status CopyBlob(Store& src, const Descriptor& desc, Store& dst, const CopyOptions& options) {
  ASSIGN_OR_RETURN(bool have, dst.HasBlob(desc.digest));
  if (have) return OkStatus();
  if (dst.TryReuseBlob(desc, src.id())) return OkStatus();
  if (options.on_blob) options.on_blob(desc);
  for (int attempt = 0;; ++attempt) {
    Status s = Transfer(src, desc, dst, options);
    if (s.ok() || s.code() != Code::kUnavailable || attempt >= options.blob_retries) return s;
  }
}

namespace {

// Copies `blobs` on up to options.parallel threads; the first error wins and
// stops the others from starting new blobs.
Status CopyBlobs(Store& src, const std::vector<Descriptor>& blobs, Store& dst, const CopyOptions& options) {
  std::atomic<size_t> next{0};
  std::mutex mu;
  Status first;
  auto work = [&] {
    for (size_t i; (i = next++) < blobs.size();) {
      Status s = CopyBlob(src, blobs[i], dst, options);
      if (!s.ok()) {
        std::lock_guard lock(mu);
        if (first.ok()) first = s;
        next = blobs.size();
      }
    }
  };
  size_t n = std::min<size_t>(std::max(options.parallel, 1), blobs.size());
  std::vector<std::thread> threads;
  for (size_t i = 1; i < n; ++i) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  return first;
}

// The image tree of one CopyImage: each distinct manifest is fetched once
// and each distinct blob listed once, however often an index names them.
struct Walk {
  std::set<Digest> manifests, blobs_seen;
  uint64_t manifest_bytes = 0;
  uint64_t max_disk_size = 0;      // CopyOptions::max_disk_size
  std::vector<RawManifest> order;  // children before the indexes naming them
  std::vector<Descriptor> blobs;
};

// Fetches `m`'s tree into `walk`, within the operation's manifest budget,
// before anything is written: a refused tree leaves nothing behind.
Status Collect(Store& src, RawManifest m, int depth, Walk& walk) {
  if (depth > kMaxIndexDepth) {
    return InvalidArgument("image index nesting deeper than " + std::to_string(kMaxIndexDepth) + " levels");
  }
  const std::string& type = m.descriptor.media_type;
  if (IsIndexType(type)) {
    ASSIGN_OR_RETURN(Index index, ParseIndex(m.bytes));
    for (const auto& child : index.manifests) {
      if (!walk.manifests.insert(child.digest).second) continue;
      RETURN_IF_ERROR(CheckManifestBudget(walk.manifests.size(), walk.manifest_bytes));
      ASSIGN_OR_RETURN(RawManifest c, src.GetManifest(child.digest.str()));
      walk.manifest_bytes += c.bytes.size();
      RETURN_IF_ERROR(Collect(src, std::move(c), depth + 1, walk));
    }
  } else if (IsManifestType(type)) {
    ASSIGN_OR_RETURN(Manifest manifest, ParseManifest(m.bytes));
    if (walk.max_disk_size) RETURN_IF_ERROR(CheckDiskLimits(manifest, walk.max_disk_size));
    manifest.layers.push_back(manifest.config);
    for (auto& b : manifest.layers) {
      if (walk.blobs_seen.insert(b.digest).second) walk.blobs.push_back(std::move(b));
    }
  } else {
    return Unsupported("cannot copy media type \"" + type + "\"");
  }
  walk.order.push_back(std::move(m));
  return OkStatus();
}

}  // namespace

StatusOr<Descriptor> CopyImage(Store& src, const std::string& src_ref, Store& dst, const std::string& dst_tag,
                               const CopyOptions& options) {
  ASSIGN_OR_RETURN(RawManifest root, src.GetManifest(src_ref));
  Descriptor root_desc = root.descriptor;
  Walk walk;
  walk.max_disk_size = options.max_disk_size;
  walk.manifests.insert(root_desc.digest);
  walk.manifest_bytes = root.bytes.size();
  RETURN_IF_ERROR(Collect(src, std::move(root), 0, walk));
  RETURN_IF_ERROR(CopyBlobs(src, walk.blobs, dst, options));
  for (size_t i = 0; i < walk.order.size(); ++i) {
    RETURN_IF_ERROR(dst.PutManifest(walk.order[i], i + 1 == walk.order.size() ? dst_tag : ""));
  }
  return root_desc;
}

}  // namespace regdisk::oci
