#include "oci/copy.h"

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

namespace regdisk::oci {

namespace {

// One attempt at moving the blob's bytes.
Status Transfer(Store& src, const Descriptor& desc, Store& dst, const CopyOptions& options) {
  ASSIGN_OR_RETURN(auto reader, src.OpenBlob(desc.digest));
  if (reader->size() != desc.size) {
    return Corrupt("blob " + desc.digest.str() + " has size " + std::to_string(reader->size()) +
                   ", expected " + std::to_string(desc.size));
  }
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

// Copies everything `m` references, then `m` itself under `tag`.
Status CopyTree(Store& src, const RawManifest& m, Store& dst, const std::string& tag,
                const CopyOptions& options, int depth) {
  // An index may name indexes; bound the depth so a hostile cycle cannot
  // recurse forever.
  if (depth > 4) return InvalidArgument("image index nesting deeper than 4 levels");
  const std::string& type = m.descriptor.media_type;
  if (IsIndexType(type)) {
    ASSIGN_OR_RETURN(Index index, ParseIndex(m.bytes));
    for (const auto& child : index.manifests) {
      ASSIGN_OR_RETURN(RawManifest c, src.GetManifest(child.digest.str()));
      RETURN_IF_ERROR(CopyTree(src, c, dst, "", options, depth + 1));
    }
  } else if (IsManifestType(type)) {
    ASSIGN_OR_RETURN(Manifest manifest, ParseManifest(m.bytes));
    std::vector<Descriptor> blobs = manifest.layers;
    blobs.push_back(manifest.config);
    RETURN_IF_ERROR(CopyBlobs(src, blobs, dst, options));
  } else {
    return Unsupported("cannot copy media type \"" + type + "\"");
  }
  return dst.PutManifest(m, tag);
}

}  // namespace

StatusOr<Descriptor> CopyImage(Store& src, const std::string& src_ref, Store& dst, const std::string& dst_tag,
                               const CopyOptions& options) {
  ASSIGN_OR_RETURN(RawManifest root, src.GetManifest(src_ref));
  RETURN_IF_ERROR(CopyTree(src, root, dst, dst_tag, options, 0));
  return root.descriptor;
}

}  // namespace regdisk::oci
