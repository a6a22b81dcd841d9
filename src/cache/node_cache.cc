#include "cache/node_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "cache/cache_internal.h"
#include "disk/overlay.h"

#include "disk/qemu_img.h"
#include "lazy/fill.h"
#include "oci/media_types.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace regdisk::cache {
namespace {

using nlohmann::json;

}  // namespace

// "/disk/NAME" (or "") -> "NAME" (or ""); any other clean absolute path
// ("/custom-disk/x", as containerDisk.path allows) is returned as it is.
// Refuses relative paths, "." and "..", empty components, a trailing "/"
// (GHSA-qv98-3369-g364: relative or odd paths).
StatusOr<std::string> DiskName(const std::string& path) {
  if (path.empty()) return std::string();
  auto bad = [&](const char* why) {
    return InvalidArgument("path " + Quote(path) + ": " + why);
  };
  if (path[0] != '/') return bad("must be an absolute path to a file in the image");
  if (path.back() == '/' || path == "/disk") return bad("must name a file, not a directory");
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string::npos) slash = path.size();
    std::string part = path.substr(pos, slash - pos);
    if (part.empty() || part == "." || part == "..") return bad("must not contain empty, \".\" or \"..\" parts");
    pos = slash + 1;
  }
  return path.starts_with("/disk/") ? path.substr(6) : path;
}

// The extractor for the disk `rel` (DiskName's result).
std::unique_ptr<layer::DiskExtractor> ExtractorFor(const std::string& work, const CacheOptions& o,
                                                  const std::string& rel, bool headers_only) {
  return std::make_unique<layer::DiskExtractor>(work, o.limits, headers_only,
                                                rel.starts_with("/") ? rel.substr(1) : std::string());
}

std::string KeyFor(const oci::Digest& manifest, const std::string& rel) {
  return manifest.hex().substr(0, 32) + "-" + (rel.empty() ? std::string("only") : Sha256::HexOf(rel).substr(0, 16));
}

std::optional<disk::Format> DeclaredFormat(const oci::Manifest& m, const std::string& path_in_image) {
  auto from = [&](const oci::Annotations& a) -> std::optional<disk::Format> {
    auto p = a.find(oci::annotation::kDiskPath);
    auto f = a.find(oci::annotation::kDiskFormat);
    if (p == a.end() || f == a.end() || p->second != path_in_image) return std::nullopt;
    auto parsed = disk::ParseFormat(f->second);
    if (!parsed.ok()) return std::nullopt;
    return *parsed;
  };
  for (auto it = m.layers.rbegin(); it != m.layers.rend(); ++it) {
    if (auto f = from(it->annotations)) return f;
  }
  return from(m.annotations);
}

namespace {

json LeaseToJson(const Lease& l) {
  return {{"vm", l.vm}, {"image", l.image}, {"path", l.path_in_image}, {"manifest", l.manifest.str()},
          {"diskKey", l.disk_key}, {"baseFile", l.base_file}, {"baseFormat", disk::FormatName(l.base_format)},
          {"overlay", l.overlay}, {"boot", l.boot}, {"nbdSocket", l.nbd_socket}};
}

StatusOr<Lease> LeaseFromJson(const std::string& text, const std::string& where) {
  try {
    auto j = json::parse(text);
    Lease l;
    l.vm = j.at("vm").get<std::string>();
    l.image = j.at("image").get<std::string>();
    l.path_in_image = j.at("path").get<std::string>();
    ASSIGN_OR_RETURN(l.manifest, oci::Digest::Parse(j.at("manifest").get<std::string>()));
    l.disk_key = j.at("diskKey").get<std::string>();
    l.base_file = j.at("baseFile").get<std::string>();
    ASSIGN_OR_RETURN(l.base_format, disk::ParseFormat(j.at("baseFormat").get<std::string>()));
    l.overlay = j.at("overlay").get<std::string>();
    l.boot = j.value("boot", "");  // missing: an unknown boot, not this one
    l.nbd_socket = j.value("nbdSocket", "");
    return l;
  } catch (const json::exception& e) {
    return Corrupt(where + ": " + e.what());
  }
}

// A flock taken only if free, so that gc never waits behind a prepare that
// is busy downloading; released when destroyed.
class TryLock {
 public:
  explicit TryLock(const std::string& path) : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
    if (fd_ >= 0 && ::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~TryLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  TryLock(const TryLock&) = delete;
  TryLock& operator=(const TryLock&) = delete;
  bool held() const { return fd_ >= 0; }

 private:
  int fd_;
};

}  // namespace

PullPolicy DefaultPullPolicy(const oci::Reference& ref) {
  return !ref.digest && ref.tag == "latest" ? PullPolicy::kAlways : PullPolicy::kIfNotPresent;
}

StatusOr<PullPolicy> ParsePullPolicy(std::string_view s) {
  if (s == "Always") return PullPolicy::kAlways;
  if (s == "IfNotPresent") return PullPolicy::kIfNotPresent;
  return InvalidArgument("imagePullPolicy " + Quote(s) + ": expected Always or IfNotPresent");
}

std::string LeaseOverlayPath(const std::string& root, const std::string& vm) {
  return root + "/vms/" + vm + "/overlay.qcow2";
}

Status CheckVmName(const std::string& vm) {
  bool ok = !vm.empty() && vm.size() <= 253 && vm != "." && vm != "..";
  for (char c : vm) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.');
  }
  if (!ok) {
    return InvalidArgument("VM name " + Quote(vm) + ": must be lowercase letters, digits, '-' or '.', at most 253");
  }
  return OkStatus();
}

StatusOr<std::unique_ptr<NodeCache>> NodeCache::Open(CacheOptions options) {
  // Overlays name the cached disk by path, and qemu resolves a relative
  // backing file against the overlay's own directory: keep it absolute.
  std::error_code ec;
  std::string absolute = std::filesystem::absolute(options.root, ec).string();
  if (ec) return IoError("resolving " + options.root, ec.value());
  options.root = absolute;
  for (const char* sub : {"/disks", "/vms", "/locks", "/tmp"}) {
    RETURN_IF_ERROR(MakeDirs(options.root + sub));
  }
  std::unique_ptr<NodeCache> cache(new NodeCache(std::move(options)));
  ASSIGN_OR_RETURN(cache->images_, layout::Layout::Open(cache->root() + "/images", true));
  return cache;
}

StatusOr<DiskEntry> NodeCache::ReadEntry(const std::string& key) {
  std::string dir = root() + "/disks/" + key;
  ASSIGN_OR_RETURN(std::string text, ReadFile(dir + "/meta.json", 1 << 20));
  DiskEntry e;
  e.key = key;
  e.file = dir + "/disk";
  try {
    auto j = json::parse(text);
    ASSIGN_OR_RETURN(e.manifest, oci::Digest::Parse(j.at("manifest").get<std::string>()));
    e.path_in_image = j.at("path").get<std::string>();
    ASSIGN_OR_RETURN(e.format, disk::ParseFormat(j.at("format").get<std::string>()));
    e.virtual_size = j.at("virtualSize").get<uint64_t>();
    e.source = j.at("source").get<std::string>();
    // A lazy entry stays lazy until its disk exists (Promote renames it in
    // before it rewrites meta.json).
    e.lazy = j.value("lazy", false) && !PathExists(e.file);
  } catch (const json::exception& ex) {
    return Corrupt(dir + "/meta.json: " + ex.what());
  }
  struct stat st;
  if (!e.lazy && ::stat(e.file.c_str(), &st) != 0) return IoError("disk of cache entry " + key, errno);
  for (const auto& name : ListDir(dir)) {
    if (::lstat((dir + "/" + name).c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      e.bytes_on_disk += static_cast<uint64_t>(st.st_blocks) * 512;
    }
  }
  e.served = ServerRunning(dir);
  if (::stat((dir + "/meta.json").c_str(), &st) == 0) e.last_used = st.st_mtime;
  return e;
}

StatusOr<oci::Digest> NodeCache::ResolveDigest(const oci::Reference& ref, PullPolicy policy,
                                               std::unique_ptr<oci::Store>& src, const StoreOpener& open,
                                               std::optional<oci::RawManifest>& picked) {
  if (ref.digest) return *ref.digest;
  if (policy == PullPolicy::kIfNotPresent) {
    if (auto have = images_->GetManifest(ref.str()); have.ok()) return have->descriptor.digest;
  }
  if (!src) {
    ASSIGN_OR_RETURN(src, open(ref));
  }
  ASSIGN_OR_RETURN(oci::RawManifest raw, src->GetManifest(ref.tag));
  auto pick = oci::SelectManifest(*src, std::move(raw), options_.platform);
  if (!pick.ok()) return pick.status().Annotate(ref.str());
  picked = std::move(*pick);
  return picked->descriptor.digest;
}

StatusOr<ImageParts> ReadImageParts(oci::Store& src, const oci::Digest& digest,
                                    const std::optional<oci::RawManifest>& picked, const oci::Platform& platform) {
  ImageParts p;
  if (picked && picked->descriptor.digest == digest) {
    p.raw = *picked;
  } else {
    ASSIGN_OR_RETURN(p.raw, src.GetManifest(digest.str()));
  }
  if (!oci::IsManifestType(p.raw.descriptor.media_type)) {
    return InvalidArgument(digest.str() + " is a " + Quote(p.raw.descriptor.media_type) + ", not an image manifest");
  }
  ASSIGN_OR_RETURN(p.manifest, oci::ParseManifest(p.raw.bytes));
  ASSIGN_OR_RETURN(p.raw_config, oci::ReadBlob(src, p.manifest.config, oci::kMaxManifestBytes));
  ASSIGN_OR_RETURN(p.config, oci::ParseImageConfig(p.raw_config));
  RETURN_IF_ERROR(oci::CheckPlatform({p.config.architecture, p.config.os, p.config.variant}, platform));
  if (p.config.diff_ids.size() != p.manifest.layers.size()) {
    return Corrupt("image has " + std::to_string(p.manifest.layers.size()) + " layers but " +
                   std::to_string(p.config.diff_ids.size()) + " diff_ids");
  }
  return p;
}

StatusOr<std::unique_ptr<WorkDir>> WorkDir::Make(const std::string& root, const std::string& key) {
  std::unique_ptr<WorkDir> w(new WorkDir(root + "/tmp/" + key + ".work"));
  RETURN_IF_ERROR(RemoveAll(w->path_));
  RETURN_IF_ERROR(MakeDirs(w->path_));
  return w;
}

WorkDir::~WorkDir() { (void)RemoveAll(path_); }

Status AddLayers(oci::Store& src, const ImageParts& img, size_t count, layer::DiskExtractor& extractor,
                 const std::function<void(uint64_t)>& on_bytes) {
  for (size_t i = 0; i < count; ++i) {
    ASSIGN_OR_RETURN(auto reader, oci::OpenBlob(src, img.manifest.layers[i]));
    RETURN_IF_ERROR(extractor.AddLayer(*reader, img.manifest.layers[i], img.config.diff_ids[i], on_bytes));
  }
  return OkStatus();
}

namespace {

// Feeds every layer, bottom first, to `extractor` and takes the disk `rel`.
StatusOr<layer::DiskExtractor::Taken> ExtractDisk(oci::Store& src, const ImageParts& img,
                                                  layer::DiskExtractor& extractor, const std::string& rel,
                                                  const std::function<void(uint64_t)>& on_bytes) {
  RETURN_IF_ERROR(AddLayers(src, img, img.manifest.layers.size(), extractor, on_bytes));
  return extractor.Take(rel);
}

}  // namespace

Status CheckDiskReadable(oci::Store& src, const oci::Digest& digest, const std::string& path,
                         const CacheOptions& options) {
  ASSIGN_OR_RETURN(std::string rel, DiskName(path));
  ASSIGN_OR_RETURN(oci::RawManifest raw, src.GetManifest(digest.str()));
  // The platform walk prepare takes, down the chosen path only.
  ASSIGN_OR_RETURN(oci::RawManifest picked, oci::SelectManifest(src, std::move(raw), options.platform));
  ASSIGN_OR_RETURN(ImageParts img, ReadImageParts(src, picked.descriptor.digest, picked, options.platform));
  auto extractor = ExtractorFor("", options, rel, /*headers_only=*/true);
  ASSIGN_OR_RETURN(auto taken, ExtractDisk(src, img, *extractor, rel, options.on_bytes));
  return layer::CheckReadableByQemu(taken);
}

StatusOr<DiskEntry> NodeCache::Fill(oci::Store& src, const oci::Digest& digest, const std::string& rel,
                                    const std::string& key, const std::string& source,
                                    const std::optional<oci::RawManifest>& picked) {
  ASSIGN_OR_RETURN(ImageParts img, ReadImageParts(src, digest, picked, options_.platform));
  const oci::RawManifest& raw = img.raw;
  const oci::Manifest& m = img.manifest;

  ASSIGN_OR_RETURN(auto work_dir, WorkDir::Make(root(), key));
  const std::string& work = work_dir->path();

  layer::DiskExtractor::Taken taken;
  {
    auto extractor = ExtractorFor(work, options_, rel, /*headers_only=*/false);
    ASSIGN_OR_RETURN(taken, ExtractDisk(src, img, *extractor, rel, options_.on_bytes));
  }
  RETURN_IF_ERROR(layer::CheckReadableByQemu(taken));
  const std::string& file = taken.file;
  std::string path_in_image = taken.name.starts_with("/") ? taken.name : "/disk/" + taken.name;
  // Messages name the disk as the image does, not our temp file.
  auto named = [&](const Status& s) {
    std::string msg = s.message();
    if (msg.starts_with(file)) msg.replace(0, file.size(), path_in_image);
    return Status(s.code(), msg);
  };
  auto info = disk::Inspect(file, DeclaredFormat(m, path_in_image));
  if (!info.ok()) return named(info.status());
  if (Status s = disk::CrossCheck(file, *info); !s.ok()) return named(s);

  if (::chmod(file.c_str(), 0444) != 0) return IoError("chmod " + file, errno);
  if (::rename(file.c_str(), (work + "/disk").c_str()) != 0) return IoError("renaming " + file, errno);
  json meta = {{"manifest", digest.str()}, {"path", path_in_image}, {"format", disk::FormatName(info->format)},
               {"virtualSize", info->virtual_size}, {"source", source}};
  RETURN_IF_ERROR(WriteFileAtomic(work + "/meta.json", meta.dump(2) + "\n"));
  RETURN_IF_ERROR(Publish(work, key, raw, img.raw_config, m.config.media_type));
  return ReadEntry(key);
}

Status NodeCache::Publish(const std::string& work, const std::string& key, const oci::RawManifest& raw,
                          const std::string& raw_config, const std::string& config_media_type) {
  // Manifest and config are kept for inspection and IfNotPresent.
  RETURN_IF_ERROR(oci::WriteBlob(*images_, raw_config, config_media_type).status());
  RETURN_IF_ERROR(images_->PutManifest(raw, ""));

  std::string dest = root() + "/disks/" + key;
  if (::rename(work.c_str(), dest.c_str()) != 0) return IoError("publishing " + dest, errno);
  int fd = ::open((root() + "/disks").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  return OkStatus();
}

StatusOr<DiskEntry> NodeCache::EnsureDisk(const oci::Reference& ref, const oci::Digest& digest,
                                          const PrepareRequest& req, const std::string& rel,
                                          std::unique_ptr<oci::Store>& src, const StoreOpener& open,
                                          const std::optional<oci::RawManifest>& picked,
                                          std::string& full_pull_reason) {
  std::string key = KeyFor(digest, rel);
  // Serving lazily needs the plugin (when given by path) and a socket path
  // that fits.
  ServerCommand server = options_.server(root(), key);
  bool lazy_ok = req.lazy;
  if (lazy_ok && server.plugin.starts_with("/") && !PathExists(server.plugin)) {
    lazy_ok = false;
    full_pull_reason = "the NBD plugin " + server.plugin + " is not installed";
  } else if (lazy_ok && ServerSocket(root() + "/disks/" + key).size() > kMaxSocketPath) {
    lazy_ok = false;
    full_pull_reason = "the NBD socket's path would be over " + std::to_string(kMaxSocketPath) + " bytes";
  }
  auto have = ReadEntry(key);
  if (have.ok()) {
    ::utimensat(AT_FDCWD, (root() + "/disks/" + key + "/meta.json").c_str(), nullptr, 0);
    if (!have->lazy || lazy_ok) return have;
  }
  if (!src) {
    ASSIGN_OR_RETURN(src, open(ref));
  }
  // A v2 image becomes a lazy entry; a full prepare then fills it (chunks
  // this node has in other entries, or other nodes have, are copied, not
  // downloaded) and it becomes an ordinary entry.
  std::shared_ptr<lazy::PeerChunks> peers;
  if (!lazy_ok && options_.open_peers && !req.serve.peers.empty()) {
    ASSIGN_OR_RETURN(peers, options_.open_peers(req.serve));
  }
  auto lazy = have.ok() ? have : FillLazy(*src, ref, digest, rel, key, req.serve, picked);
  if (lazy.ok() && !lazy_ok) {
    lazy::FillOptions fill;
    fill.key_locked = true;
    fill.on_bytes = options_.on_bytes;
    fill.peers = peers;
    if (Status s = lazy::FillEntry(root(), key, *src, fill); !s.ok()) {
      if (!have.ok()) (void)RemoveEntry(key);  // an entry others use stays
      return s.Annotate(ref.str());
    }
    return ReadEntry(key);
  }
  if (lazy.ok() || lazy.status().code() != Code::kUnsupported) {
    if (!lazy.ok()) return lazy.status().Annotate(ref.str());
    return lazy;
  }
  if (lazy_ok) full_pull_reason = lazy.status().message();
  auto e = Fill(*src, digest, rel, key, ref.str(), picked);
  if (!e.ok()) return e.status().Annotate(ref.str());
  return e;
}

StatusOr<Lease> NodeCache::Prepare(const PrepareRequest& req, const StoreOpener& open) {
  RETURN_IF_ERROR(CheckVmName(req.vm));
  ASSIGN_OR_RETURN(oci::Reference ref, oci::Reference::Parse(req.image));
  ASSIGN_OR_RETURN(std::string rel, DiskName(req.path));
  ASSIGN_OR_RETURN(FileLock vm_lock, FileLock::Acquire(root() + "/locks/vm-" + req.vm + ".lock"));

  ASSIGN_OR_RETURN(std::optional<Lease> existing, GetLease(req.vm));
  // An overlay made before the machine's last restart may be torn (it is
  // never synced): the lease gets a new one.
  ASSIGN_OR_RETURN(std::string boot, BootId());
  if (existing && existing->image == req.image && existing->boot == boot && PathExists(existing->overlay)) {
    RETURN_IF_ERROR(EnsureServing(*existing));
    return *existing;
  }
  if (existing && existing->image != req.image) {
    return InvalidArgument("VM " + req.vm + " already holds a lease on " + existing->image + "; release it first");
  }

  std::unique_ptr<oci::Store> src;
  std::optional<oci::RawManifest> picked;
  oci::Digest digest;
  if (existing) {
    digest = existing->manifest;  // pinned: a moved tag does not change a VM's disk
  } else {
    ASSIGN_OR_RETURN(digest, ResolveDigest(ref, req.policy.value_or(DefaultPullPolicy(ref)), src, open, picked));
  }
  ASSIGN_OR_RETURN(FileLock key_lock, FileLock::Acquire(root() + "/locks/disk-" + KeyFor(digest, rel) + ".lock"));
  std::string full_pull_reason;
  ASSIGN_OR_RETURN(DiskEntry entry, EnsureDisk(ref, digest, req, rel, src, open, picked, full_pull_reason));

  Lease lease;
  lease.vm = req.vm;
  lease.image = req.image;
  lease.path_in_image = entry.path_in_image;
  lease.manifest = digest;
  lease.disk_key = entry.key;
  lease.base_file = entry.file;
  lease.base_format = entry.format;
  lease.boot = boot;
  lease.full_pull_reason = full_pull_reason;
  std::string vm_dir = root() + "/vms/" + req.vm;
  lease.overlay = LeaseOverlayPath(root(), req.vm);
  RETURN_IF_ERROR(MakeDirs(vm_dir));
  // The overlay is not synced (disk::CreateOverlay). The lease is: its one
  // fsync, before the rename, means lease.json always parses after a crash.
  // The directory is not synced: a crash may lose the rename, which leaves
  // no lease (gc removes the orphan overlay) or the one before.
  Status made = entry.lazy ? AttachLazy(entry, lease) : disk::CreateOverlay(entry.file, entry.format, lease.overlay);
  if (made.ok()) {
    made = WriteFileAtomic(vm_dir + "/lease.json", LeaseToJson(lease).dump(2) + "\n", 0644, Durability::kWhole);
  }
  if (!made.ok()) {
    if (!existing) (void)RemoveAll(vm_dir);  // an existing lease keeps its pinned digest
    return made;
  }
  if (!ref.digest) {
    if (auto m = images_->GetManifest(digest.str()); m.ok()) (void)images_->PutManifest(*m, ref.str());
  }
  return lease;
}

StatusOr<std::optional<Lease>> NodeCache::GetLease(const std::string& vm) {
  RETURN_IF_ERROR(CheckVmName(vm));
  std::string path = root() + "/vms/" + vm + "/lease.json";
  auto text = ReadFile(path, 1 << 20);
  if (!text.ok()) {
    if (text.status().code() == Code::kNotFound) return std::optional<Lease>();
    return text.status();
  }
  ASSIGN_OR_RETURN(Lease l, LeaseFromJson(*text, path));
  return std::optional<Lease>(l);
}

Status NodeCache::Release(const std::string& vm) {
  RETURN_IF_ERROR(CheckVmName(vm));
  ASSIGN_OR_RETURN(FileLock vm_lock, FileLock::Acquire(root() + "/locks/vm-" + vm + ".lock"));
  std::string dir = root() + "/vms/" + vm;
  if (!PathExists(dir)) return NotFound("VM " + vm + " holds no lease");
  auto lease = GetLease(vm);
  // The lease goes first: a crash after it leaves only an orphan overlay.
  ::unlink((dir + "/lease.json").c_str());
  RETURN_IF_ERROR(RemoveAll(dir));
  if (!lease.ok() || !*lease || (*lease)->nbd_socket.empty()) return OkStatus();
  return StopUnleasedServer((*lease)->disk_key, /*complete_only=*/true);
}

StatusOr<std::vector<DiskEntry>> NodeCache::List() {
  std::map<std::string, std::vector<std::string>> leases;
  for (const auto& vm : ListDir(root() + "/vms")) {
    auto l = GetLease(vm);
    if (l.ok() && *l) leases[(*l)->disk_key].push_back(vm);
  }
  std::vector<DiskEntry> out;
  for (const auto& key : ListDir(root() + "/disks")) {
    auto e = ReadEntry(key);
    if (!e.ok()) continue;  // not a published entry
    e->leased_by = leases[key];
    out.push_back(*e);
  }
  return out;
}

void NodeCache::RemoveLeftovers() {
  // Work and trash dirs are named KEY.work, KEY.trash and belong to whoever
  // holds KEY's lock; a free lock means their owner died.
  for (const auto& name : ListDir(root() + "/tmp")) {
    size_t dot = name.find('.');
    if (dot == std::string::npos || (name.substr(dot) != ".work" && name.substr(dot) != ".trash")) continue;
    TryLock lock(root() + "/locks/disk-" + name.substr(0, dot) + ".lock");
    if (lock.held()) (void)RemoveAll(root() + "/tmp/" + name);
  }
  // A VM dir without a lease: a prepare or release died between the overlay
  // and the lease. Nothing will use that overlay again.
  for (const auto& vm : ListDir(root() + "/vms")) {
    if (!CheckVmName(vm).ok()) continue;
    std::string dir = root() + "/vms/" + vm;
    TryLock lock(root() + "/locks/vm-" + vm + ".lock");
    if (lock.held() && !PathExists(dir + "/lease.json")) (void)RemoveAll(dir);
  }
}

Status NodeCache::RemoveEntry(const std::string& key) {
  std::string trash = root() + "/tmp/" + key + ".trash";
  RETURN_IF_ERROR(RemoveAll(trash));
  if (::rename((root() + "/disks/" + key).c_str(), trash.c_str()) != 0) {
    return IoError("removing cache entry " + key, errno);
  }
  return RemoveAll(trash);
}

bool NodeCache::Leased(const std::string& key, bool nbd_only) {
  for (const auto& vm : ListDir(root() + "/vms")) {
    auto l = GetLease(vm);
    if (l.ok() && *l && (*l)->disk_key == key && (!nbd_only || !(*l)->nbd_socket.empty())) return true;
  }
  return false;
}

Status NodeCache::StopUnleasedServer(const std::string& key, bool complete_only) {
  std::string dir = root() + "/disks/" + key;
  ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(root() + "/locks/disk-" + key + ".lock"));
  if (Leased(key, /*nbd_only=*/true) || (complete_only && !PathExists(dir + "/disk"))) return OkStatus();
  return StopServer(dir);
}

StatusOr<NodeCache::GcResult> NodeCache::Gc(uint64_t max_bytes) {
  RemoveLeftovers();
  ASSIGN_OR_RETURN(std::vector<DiskEntry> entries, List());
  for (const auto& e : entries) {
    if (e.served && e.leased_by.empty()) RETURN_IF_ERROR(StopUnleasedServer(e.key, /*complete_only=*/false));
  }
  std::sort(entries.begin(), entries.end(),
            [](const DiskEntry& a, const DiskEntry& b) { return a.last_used < b.last_used; });
  GcResult r;
  uint64_t total = 0;
  for (const auto& e : entries) total += e.bytes_on_disk;
  std::set<std::string> live_manifests;
  for (const auto& e : entries) {
    bool over = max_bytes == 0 || total > max_bytes;
    if (!over || !e.leased_by.empty()) {
      live_manifests.insert(e.manifest.str());
      continue;
    }
    ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(root() + "/locks/disk-" + e.key + ".lock"));
    // A prepare may have leased it (and started its server) between
    // List() and the lock.
    if (Leased(e.key, /*nbd_only=*/false) || ServerRunning(root() + "/disks/" + e.key)) {
      live_manifests.insert(e.manifest.str());
      continue;
    }
    RETURN_IF_ERROR(RemoveEntry(e.key));
    total -= e.bytes_on_disk;
    r.removed++;
    r.bytes_freed += e.bytes_on_disk;
  }
  r.bytes_kept = total;
  // Tags of images whose disks are all gone, then their manifests.
  ASSIGN_OR_RETURN(auto tags, images_->ListTags());
  for (const auto& [tag, desc] : tags) {
    if (!live_manifests.count(desc.digest.str())) (void)images_->Untag(tag);
  }
  RETURN_IF_ERROR(images_->Gc().status());
  return r;
}

}  // namespace regdisk::cache
