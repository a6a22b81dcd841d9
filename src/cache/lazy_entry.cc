// NodeCache's lazy entries (node_cache.h): FillLazy checks a v2 image with
// a few range reads and publishes an entry without its disk; AttachLazy and
// EnsureServing put a lease on the entry's NBD export.
#include <sys/statvfs.h>

#include <cerrno>

#include <nlohmann/json.hpp>

#include "cache/cache_internal.h"
#include "cache/nbd_server.h"
#include "disk/overlay.h"
#include "layer/chunk_reader.h"
#include "layer/disk_index.h"
#include "layer/head_reader.h"
#include "util/fs.h"

namespace regdisk::cache {
namespace {

using nlohmann::json;

// Range reads of the blob `layer` of `src` (Store::ReadAt), bounded by the
// descriptor's size. A store without them answers Unsupported: the image is
// then pulled whole.
layer::BlobReadAt RangeReader(oci::Store& src, const oci::Descriptor& layer) {
  return [&src, digest = layer.digest, size = layer.size](uint64_t offset, char* buf, size_t len) -> Status {
    if (offset > size || len > size - offset) return InvalidArgument("range read past the blob's end");
    return src.ReadAt(digest, offset, buf, len);
  };
}

// The disk's first min(disk size, want) bytes, every chunk verified; zero
// extents as zeros.
StatusOr<std::string> DiskStart(const layer::BlobReadAt& read, const layer::DiskIndex& index, uint64_t want) {
  want = std::min(want, index.disk_size);
  std::string out;
  for (const layer::IndexEntry& e : index.entries) {
    if (out.size() >= want) break;
    if (e.zero()) {
      out.append(std::min<uint64_t>(e.length, want - out.size()), '\0');
      continue;
    }
    ASSIGN_OR_RETURN(std::string bytes, layer::ReadChunk(read, index.codec, e));
    out += bytes;
  }
  out.resize(want);
  return out;
}

// Where the plugin finds the image: docker://HOST/REPO@DIGEST, or
// oci:/LAYOUT@DIGEST.
std::string ImageLocation(const oci::Store& src, const oci::Digest& digest) {
  oci::StoreId id = src.id();
  return id.domain + (id.repository.empty() ? "" : "/" + id.repository) + "@" + digest.str();
}

}  // namespace

StatusOr<DiskEntry> NodeCache::FillLazy(oci::Store& src, const oci::Reference& ref, const oci::Digest& digest,
                                        const std::string& rel, const std::string& key,
                                        lazy::ServeConfig serve,
                                        const std::optional<oci::RawManifest>& picked) {
  if (rel.starts_with("/")) return Unsupported("the disk is not under /disk");
  ASSIGN_OR_RETURN(ImageParts img, ReadImageParts(src, digest, picked, options_.platform));
  const oci::Manifest& m = img.manifest;
  if (m.layers.empty()) return Unsupported("the image has no layers");
  const oci::Descriptor& top = m.layers.back();
  ASSIGN_OR_RETURN(std::optional<layer::IndexAnchor> anchor, layer::ParseAnchor(top));
  if (!anchor) {
    for (const auto& l : m.layers) {
      if (l.annotations.count(layer::kIndexDigestAnnotation)) return Unsupported("the v2 disk layer is not the top layer");
    }
    return Unsupported("not a v2 image (no chunk index)");
  }
  ASSIGN_OR_RETURN(layer::Codec codec, layer::CodecForMediaType(top.media_type));
  layer::BlobReadAt read = RangeReader(src, top);

  // The index, checked against the anchor in the pinned manifest.
  std::string member(anchor->length, '\0');
  RETURN_IF_ERROR(read(anchor->offset, member.data(), member.size()).Annotate("reading the chunk index"));
  ASSIGN_OR_RETURN(layer::DiskIndex index, layer::OpenIndex(*anchor, codec, member));
  ASSIGN_OR_RETURN(std::string index_bytes, layer::DecodeMember(codec, member, anchor->uncompressed_length));
  if (index.disk_size > options_.limits.max_disk_size) {
    return InvalidArgument("disk of " + std::to_string(index.disk_size) + " bytes is over the limit of " +
                           std::to_string(options_.limits.max_disk_size) + " bytes (--max-disk-size)");
  }

  // Lower layers must not hold disk files of their own (the full pull
  // would see them): each is read whole and verified, headers only.
  if (m.layers.size() > 1) {
    auto lower = ExtractorFor("", options_, rel, /*headers_only=*/true);
    RETURN_IF_ERROR(AddLayers(src, img, m.layers.size() - 1, *lower, options_.on_bytes));
    if (!lower->Disks().empty()) return Unsupported("a layer below the v2 disk layer holds disk files");
  }

  // The tar head: the disk's name, owner and mode.
  ASSIGN_OR_RETURN(layer::HeadEntry head, layer::ReadHead(read, index));
  if (!rel.empty() && head.name != rel) return Unsupported("the v2 layer holds another disk than the one asked for");
  std::string path_in_image = "/disk/" + head.name;
  RETURN_IF_ERROR(layer::CheckReadableByQemu({head.name, "", head.uid, head.gid, head.mode}));

  // The disk's first bytes: format, qcow2 header, virtual size.
  ASSIGN_OR_RETURN(std::string start, DiskStart(read, index, disk::kInspectHeadBytes));
  ASSIGN_OR_RETURN(disk::DiskInfo info,
                   disk::InspectHead(start, index.disk_size, DeclaredFormat(m, path_in_image), path_in_image));
  if (info.virtual_size > options_.limits.max_disk_size) {
    return InvalidArgument(path_in_image + ": virtual size " + std::to_string(info.virtual_size) +
                           " bytes is over the limit of " + std::to_string(options_.limits.max_disk_size) +
                           " bytes (--max-disk-size)");
  }
  // The chunks will fill disk.partial: the same free-space rule as a pull.
  uint64_t data = 0;
  for (const auto& e : index.entries) data += e.zero() ? 0 : e.length;
  struct statvfs vfs;
  if (::statvfs(root().c_str(), &vfs) == 0) {
    uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    if (data + options_.limits.free_space_reserve > free_bytes) {
      return IoError(path_in_image + ": its " + std::to_string(data) + " bytes of data would leave less than " +
                         std::to_string(options_.limits.free_space_reserve) + " bytes free in " + root(),
                     ENOSPC);
    }
  }

  serve.layer = top;
  serve.diff_id = img.config.diff_ids.back();
  serve.image = ImageLocation(src, digest);

  std::string work = root() + "/tmp/" + key + ".work";
  RETURN_IF_ERROR(RemoveAll(work));
  RETURN_IF_ERROR(MakeDirs(work));
  struct Cleanup {
    std::string dir;
    ~Cleanup() { (void)RemoveAll(dir); }
  } cleanup{work};
  RETURN_IF_ERROR(WriteFileAtomic(work + "/" + lazy::kIndexFile, index_bytes, 0444));
  RETURN_IF_ERROR(lazy::WriteServeConfig(work, serve));
  json meta = {{"manifest", digest.str()}, {"path", path_in_image}, {"format", disk::FormatName(info.format)},
               {"virtualSize", info.virtual_size}, {"source", ref.str()}, {"lazy", true}};
  RETURN_IF_ERROR(WriteFileAtomic(work + "/" + lazy::kMetaFile, meta.dump(2) + "\n"));
  RETURN_IF_ERROR(Publish(work, key, img.raw, img.raw_config, m.config.media_type));
  return ReadEntry(key);
}

Status NodeCache::AttachLazy(const DiskEntry& entry, Lease& lease) {
  std::string dir = root() + "/disks/" + entry.key;
  RETURN_IF_ERROR(EnsureServer(dir, options_.server(root(), entry.key)));
  lease.base_file.clear();
  lease.nbd_socket = ServerSocket(dir);
  return disk::CreateNbdOverlay(lease.nbd_socket, entry.format, entry.virtual_size, lease.overlay);
}

Status NodeCache::EnsureServing(const Lease& lease) {
  if (lease.nbd_socket.empty()) return OkStatus();
  ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(root() + "/locks/disk-" + lease.disk_key + ".lock"));
  std::string dir = root() + "/disks/" + lease.disk_key;
  if (!PathExists(dir + "/meta.json")) return NotFound("the cache entry of " + lease.vm + "'s disk is gone");
  return EnsureServer(dir, options_.server(root(), lease.disk_key)).Annotate(lease.vm);
}

}  // namespace regdisk::cache
