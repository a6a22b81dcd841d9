#include "lazy/fill.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <optional>

#include <nlohmann/json.hpp>

#include "disk/format.h"
#include "disk/qemu_img.h"
#include "layer/index_verifier.h"
#include "lazy/chunk_store.h"
#include "util/fs.h"

namespace regdisk::lazy {
namespace {

using nlohmann::json;

StatusOr<json> ReadMeta(const std::string& dir) {
  const std::string path = dir + "/" + kMetaFile;
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxEntryJsonBytes));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Corrupt(path + ": not a JSON object");
  auto f = j.find("format");
  auto v = j.find("virtualSize");
  if (f == j.end() || !f->is_string() || v == j.end() || !v->is_number_unsigned()) {
    return Corrupt(path + ": no \"format\" string or \"virtualSize\" number");
  }
  return j;
}

Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("opening " + dir, errno);
  int r = ::fsync(fd);
  ::close(fd);
  return r == 0 ? OkStatus() : IoError("fsync " + dir, errno);
}

// A blob reader that reports the bytes it hands out.
class ProgressReader : public oci::BlobReader {
 public:
  ProgressReader(std::unique_ptr<oci::BlobReader> inner, const std::function<void(uint64_t)>& on_bytes)
      : inner_(std::move(inner)), on_bytes_(on_bytes) {}
  StatusOr<size_t> Read(void* buf, size_t len) override {
    ASSIGN_OR_RETURN(size_t n, inner_->Read(buf, len));
    if (on_bytes_ && n > 0) on_bytes_(n);
    return n;
  }
  uint64_t size() const override { return inner_->size(); }

 private:
  std::unique_ptr<oci::BlobReader> inner_;
  const std::function<void(uint64_t)>& on_bytes_;
};

// True when some data chunk of the store is another node's to load
// (PeerChunks::OwnsChunk): some peer is up that may hold it.
bool PeersMayHelp(const ChunkStore& store, PeerChunks* peers) {
  if (peers == nullptr) return false;
  for (const layer::IndexEntry& e : store.index().entries) {
    if (!e.zero() && !peers->OwnsChunk(e)) return true;
  }
  return false;
}

}  // namespace

Status PromoteVerified(const std::string& dir, int fd) {
  ASSIGN_OR_RETURN(json meta, ReadMeta(dir));
  ASSIGN_OR_RETURN(disk::Format format, disk::ParseFormat(meta["format"].get<std::string>()));
  const std::string partial = dir + "/" + kPartialFile, disk = dir + "/" + kDiskFile;
  if (::fsync(fd) != 0) return IoError("fsync " + partial, errno);
  ASSIGN_OR_RETURN(disk::DiskInfo info, disk::Inspect(partial, format));
  if (info.virtual_size != meta["virtualSize"].get<uint64_t>()) {
    return Corrupt(partial + ": virtual size " + std::to_string(info.virtual_size) + ", meta.json says " +
                   std::to_string(meta["virtualSize"].get<uint64_t>()));
  }
  RETURN_IF_ERROR(disk::CrossCheck(partial, info));
  if (::fchmod(fd, 0444) != 0) return IoError("chmod " + partial, errno);
  if (::rename(partial.c_str(), disk.c_str()) != 0) return IoError("renaming " + partial, errno);
  RETURN_IF_ERROR(SyncDir(dir));
  meta.erase("lazy");
  RETURN_IF_ERROR(WriteFileAtomic(dir + "/" + kMetaFile, meta.dump(2) + "\n"));
  ::unlink((dir + "/" + kChunksFile).c_str());
  return OkStatus();
}

Status ChunkStore::Promote(bool locked) {
  if (promoted_) return OkStatus();
  // Loading what is missing may take long: it happens before the lock,
  // which a prepare of the same key waits for.
  RETURN_IF_ERROR(FillMissing(options_.parallel, 0, nullptr));
  std::optional<FileLock> lock;
  if (!locked) {
    ASSIGN_OR_RETURN(FileLock l, FileLock::Acquire(KeyLockPath(root_, key_)));
    lock.emplace(std::move(l));
  }
  if (!PathExists(dir_ + "/" + kDiskFile)) RETURN_IF_ERROR(PromoteVerified(dir_, fd_));
  promoted_ = true;
  Log("entry " + key_ + " is complete: promoted to " + dir_ + "/" + kDiskFile);
  return OkStatus();
}

Status Promote(const std::string& root, const std::string& key, bool key_locked) {
  ASSIGN_OR_RETURN(auto store, ChunkStore::Open(root, key, nullptr, {.use_donors = false}));
  return store->Promote(key_locked);
}

Status FillEntry(const std::string& root, const std::string& key, oci::Store& source, const FillOptions& options) {
  ASSIGN_OR_RETURN(ServeConfig config, ReadServeConfig(EntryDir(root, key)));
  const oci::Digest blob = config.layer.digest;
  layer::BlobReadAt read = [&source, &options, blob](uint64_t offset, char* buf, size_t len) {
    Status s = source.ReadAt(blob, offset, buf, len);
    if (s.ok() && options.on_bytes) options.on_bytes(len);
    return s;
  };
  StoreOptions so{.parallel = options.parallel, .use_donors = true, .log = options.log, .peers = options.peers};
  ASSIGN_OR_RETURN(auto store, ChunkStore::Open(root, key, read, so));
  if (store->promoted()) return OkStatus();
  if (!store->AnyLocal() && !PeersMayHelp(*store, options.peers.get())) {
    // Nothing to reuse: one pass over the whole blob is the cheapest fetch,
    // and it proves the layer whole as a full pull would.
    ASSIGN_OR_RETURN(std::optional<layer::IndexAnchor> anchor, layer::ParseAnchor(store->config().layer));
    ASSIGN_OR_RETURN(auto blob_reader, oci::OpenBlob(source, store->config().layer));
    ProgressReader reader(std::move(blob_reader), options.on_bytes);
    const layer::DiskIndex& index = store->index();
    layer::VerifyHooks hooks{
        .on_chunk = [&](const layer::IndexEntry& e, std::string_view bytes) {
          return store->PutVerified(static_cast<size_t>(&e - index.entries.data()), bytes);
        },
        .diff_id = store->config().diff_id};
    Status v = layer::VerifyLayer(reader, *anchor, index, hooks);
    if (!v.ok()) {
      // A blob that is not the one the manifest names is reported as that
      // (the bounded reader checks its digest at the end), not as whatever
      // its bytes broke first.
      for (char buf[64 << 10];;) {
        auto n = reader.Read(buf, sizeof buf);
        if (!n.ok()) return n.status();
        if (*n == 0) break;
      }
      return v.Annotate("layer " + blob.str());
    }
  }
  return store->Promote(options.key_locked);
}

}  // namespace regdisk::lazy
