#include "layer/disk_extractor.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "layer/decompressor.h"
#include "layer/layer_stream.h"
#include "util/fs.h"

namespace regdisk::layer {
namespace {

// Zero runs at least this long are left as holes in the extracted file.
constexpr size_t kHoleGranule = 64 << 10;
// The start of a qcow2 header, enough for its virtual size: the magic
// "QFI\xfb" at 0 and the size, big-endian, at 24 (qemu
// docs/interop/qcow2.txt; disk/qcow2.h reads the rest once the file is out,
// this module cannot use it). A qcow2 asking for more than the limit is
// refused from its first bytes, before the rest of it is written.
constexpr std::string_view kQcow2Magic("QFI\xfb", 4);
constexpr size_t kQcow2SizeOffset = 24;
constexpr size_t kQcow2PeekBytes = kQcow2SizeOffset + 8;

struct ReadContext {
  LayerStream* stream;
  Status error;
};

la_ssize_t ReadCallback(archive* a, void* ctx, const void** out) {
  auto* c = static_cast<ReadContext*>(ctx);
  auto piece = c->stream->Next();
  if (!piece.ok()) {
    c->error = piece.status();
    archive_set_error(a, EIO, "%s", piece.status().message().c_str());
    return -1;
  }
  *out = piece->data();
  return static_cast<la_ssize_t>(piece->size());
}

// "./disk//a" -> "disk/a"; refuses absolute names, ".." and NUL.
StatusOr<std::string> NormalizeName(const char* raw) {
  if (raw == nullptr || *raw == '\0') return Corrupt("tar entry without a name");
  std::string name(raw);
  if (name[0] == '/') return InvalidArgument("tar entry " + Quote(name) + " has an absolute name");
  std::string out;
  size_t pos = 0;
  while (pos <= name.size()) {
    size_t slash = name.find('/', pos);
    if (slash == std::string::npos) slash = name.size();
    std::string part = name.substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") return InvalidArgument("tar entry " + Quote(name) + " contains \"..\"");
    out += (out.empty() ? "" : "/") + part;
  }
  return out;
}

std::string ArchiveError(archive* a) {
  const char* e = archive_error_string(a);
  return e ? OneLine(e) : "unknown tar error";  // it may quote names from the tar
}

bool InDisk(const std::string& name) { return name == "disk" || name.starts_with("disk/"); }

bool AllZero(const char* p, size_t n) {
  return n > 0 && p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0;
}

// The bytes of data an entry holds: its size, less the holes of a sparse
// entry (whose map libarchive has read with the header).
uint64_t DataBytes(archive_entry* e) {
  if (archive_entry_sparse_reset(e) == 0) return static_cast<uint64_t>(archive_entry_size(e));
  uint64_t total = 0;
  la_int64_t offset, length;
  while (archive_entry_sparse_next(e, &offset, &length) == ARCHIVE_OK) total += static_cast<uint64_t>(length);
  return total;
}

// Free bytes on the file system holding `dir`, for an unprivileged writer.
StatusOr<uint64_t> FreeBytes(const std::string& dir) {
  struct statvfs st;
  if (::statvfs(dir.c_str(), &st) != 0) return IoError("statvfs " + dir, errno);
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

// A disk file's name in messages, quoted: "disk/NAME", or the one other
// file a containerDisk.path names, as its tar name ("custom/disk").
std::string DiskName(const std::string& rel) { return Quote(rel.starts_with("/") ? rel.substr(1) : "disk/" + rel); }

// The first bytes of a file as its data blocks arrive, for the qcow2 check.
class HeadPeek {
 public:
  // Takes a block at `offset`. done() once the head is complete or cannot
  // grow (a block past it, or a hole at its start).
  void Add(uint64_t offset, const char* p, size_t n) {
    if (offset != head_.size() || head_.size() >= kQcow2PeekBytes) {
      done_ = true;
      return;
    }
    head_.append(p, std::min(n, kQcow2PeekBytes - head_.size()));
    done_ = head_.size() == kQcow2PeekBytes;
  }
  bool done() const { return done_; }
  // The qcow2 virtual size, if the head is a qcow2 header's.
  std::optional<uint64_t> Qcow2VirtualSize() const {
    if (head_.size() < kQcow2PeekBytes || !std::string_view(head_).starts_with(kQcow2Magic)) return std::nullopt;
    uint64_t v = 0;
    for (size_t i = 0; i < 8; ++i) v = v << 8 | static_cast<unsigned char>(head_[kQcow2SizeOffset + i]);
    return v;
  }

 private:
  std::string head_;
  bool done_ = false;
};

}  // namespace

ExtractLimits ExtractLimits::ForMaxDiskSize(uint64_t max_disk_size) {
  ExtractLimits l;
  l.max_disk_size = max_disk_size;
  // Saturating: a limit near 2^64 means none, not a tiny one.
  l.max_layer_bytes = max_disk_size > UINT64_MAX - kLayerExtraBytes ? UINT64_MAX : max_disk_size + kLayerExtraBytes;
  return l;
}

struct DiskExtractor::Impl {
  std::string work_dir;
  ExtractLimits limits;
  bool headers_only = false;
  // A file outside /disk that is also taken ("custom-disk/x"), as
  // containerDisk.path may name one; kept in `files` as "/custom-disk/x".
  std::string other;
  std::map<std::string, std::string> files;  // name inside /disk -> file in work_dir
  struct Owner {
    int64_t uid, gid;
    uint32_t mode;
  };
  std::map<std::string, Owner> owners;       // name inside /disk -> its last tar header's
  int counter = 0;
  Status failed;  // the error of a layer that failed: the extractor is spent
  // Bytes this layer may still write: the free space when it started, less
  // the reserve, less what it wrote.
  uint64_t write_budget = 0;

  ~Impl() {
    for (const auto& [name, path] : files) {
      if (!path.empty()) ::unlink(path.c_str());
    }
  }

  void Remove(const std::string& prefix_or_name, bool prefix) {
    for (auto it = files.begin(); it != files.end();) {
      bool hit = prefix ? (prefix_or_name.empty() || it->first.starts_with(prefix_or_name + "/"))
                        : (it->first == prefix_or_name || it->first.starts_with(prefix_or_name + "/"));
      if (hit) {
        if (!it->second.empty()) ::unlink(it->second.c_str());
        it = files.erase(it);
      } else {
        ++it;
      }
    }
  }

  bool IsOther(const std::string& name) const { return !other.empty() && name == other; }
  bool AboveOther(const std::string& name) const { return !other.empty() && other.starts_with(name + "/"); }
  // What a tar entry's name or a whiteout's target does to `other`: a
  // whiteout of it or of a directory above it deletes it.
  void WhiteoutOther(const std::string& target) {
    if (IsOther(target) || AboveOther(target)) Remove("/" + other, false);
  }

  // Refuses, before a byte of it is written, a disk over the size limit,
  // one whose data would not fit in the write budget, and one disk file
  // too many.
  Status CheckBeforeWriting(archive_entry* e, const std::string& rel, int64_t size) {
    // The name is recorded (JSON, which must be UTF-8) and shown.
    if (!IsValidUtf8(rel)) return InvalidArgument(DiskName(rel) + " is not a valid UTF-8 name: refused");
    if (size < 0 || static_cast<uint64_t>(size) > limits.max_disk_size) {
      return InvalidArgument(DiskName(rel) + " is " + std::to_string(size) + " bytes, over the disk size limit of " +
                             std::to_string(limits.max_disk_size) + " bytes (--max-disk-size)");
    }
    if (uint64_t data = DataBytes(e); data > write_budget) {
      return Status(Code::kIo, DiskName(rel) + " holds " + std::to_string(data) +
                                   " bytes of data, more than the cache's file system can take while keeping " +
                                   std::to_string(limits.free_space_reserve) + " bytes free");
    }
    if (!files.count(rel) && files.size() >= limits.max_disk_files) {
      std::vector<std::string> names;
      for (const auto& [n, p] : files) names.push_back("disk/" + n);
      names.push_back("disk/" + rel);
      return InvalidArgument("more than " + std::to_string(limits.max_disk_files) + " files under /disk (" +
                             QuoteList(names) + "): refused, a disk image holds a few disks at most");
    }
    return OkStatus();
  }

  Status ExtractFile(archive* a, archive_entry* e, const std::string& rel) {
    int64_t size = archive_entry_size(e);
    RETURN_IF_ERROR(CheckBeforeWriting(e, rel, size));
    owners[rel] = {archive_entry_uid(e), archive_entry_gid(e), static_cast<uint32_t>(archive_entry_perm(e))};
    if (headers_only) {
      Remove(rel, false);
      files[rel] = "";  // libarchive skips the data at the next header
      return OkStatus();
    }
    std::string path = work_dir + "/.extract-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return IoError("creating " + path, errno);
    Remove(rel, false);
    files[rel] = path;
    struct Closer {
      int fd;
      ~Closer() { ::close(fd); }
    } closer{fd};
    HeadPeek head;
    const void* buf;
    size_t len;
    la_int64_t offset;
    for (;;) {
      int r = archive_read_data_block(a, &buf, &len, &offset);
      if (r == ARCHIVE_EOF) break;
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
        return Corrupt("reading " + DiskName(rel) + ": " + ArchiveError(a));
      }
      if (offset < 0 || static_cast<uint64_t>(offset) + len > static_cast<uint64_t>(size)) {
        return Corrupt(DiskName(rel) + ": data beyond the entry's size");
      }
      const char* p = static_cast<const char*>(buf);
      if (!head.done()) {
        head.Add(static_cast<uint64_t>(offset), p, len);
        if (auto vsize = head.Qcow2VirtualSize(); vsize && *vsize > limits.max_disk_size) {
          return InvalidArgument(DiskName(rel) + " is a qcow2 of virtual size " + std::to_string(*vsize) +
                                 " bytes, over the disk size limit of " + std::to_string(limits.max_disk_size) +
                                 " bytes (--max-disk-size)");
        }
      }
      for (size_t done = 0; done < len;) {
        size_t n = std::min(kHoleGranule, len - done);
        if (!AllZero(p + done, n)) {
          // The data bytes were checked against the budget; a lying sparse
          // map is caught here.
          if (n > write_budget) {
            return Status(Code::kIo, "writing " + DiskName(rel) + ": the cache's file system would have less than " +
                                         std::to_string(limits.free_space_reserve) + " bytes free");
          }
          if (::pwrite(fd, p + done, n, offset + static_cast<off_t>(done)) != static_cast<ssize_t>(n)) {
            return IoError("writing " + path, errno);
          }
          write_budget -= n;
        }
        done += n;
      }
    }
    // Not fsynced here: only the disk taken is (Take), so a layer of many
    // files costs no flush each.
    if (::ftruncate(fd, size) != 0) return IoError("finishing " + path, errno);
    return OkStatus();
  }

  // Reads one layer's entries from `stream`, then verifies its digests.
  Status Extract(LayerStream& stream, const oci::Descriptor& desc, const oci::Digest& diff_id);

  Status HandleEntry(archive* a, archive_entry* e) {
    ASSIGN_OR_RETURN(std::string name, NormalizeName(archive_entry_pathname(e)));
    mode_t type = archive_entry_filetype(e);
    if (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFIFO || type == AE_IFSOCK) {
      return InvalidArgument("tar entry " + Quote(name) + " is a device node or FIFO: refused");
    }
    if (const char* target = archive_entry_hardlink(e)) {
      auto t = NormalizeName(target);
      if (!t.ok()) return t.status().Annotate("hardlink " + Quote(name));
      if (InDisk(name) || InDisk(*t)) {
        return InvalidArgument("tar entry " + Quote(name) + " is a hardlink to " + Quote(*t) + ": refused under /disk");
      }
      if (IsOther(name) || IsOther(*t)) {
        return InvalidArgument("tar entry " + Quote(name) + " is a hardlink to " + Quote(*t) + ": refused for the disk");
      }
      return OkStatus();
    }
    if (type == AE_IFLNK) {
      const char* target = archive_entry_symlink(e);
      if (InDisk(name)) {
        return InvalidArgument("tar entry " + Quote(name) + " is a symlink to " + Quote(target ? target : "") +
                               ": refused under /disk");
      }
      if (IsOther(name) || AboveOther(name)) {
        return InvalidArgument("tar entry " + Quote(name) + " is a symlink to " + Quote(target ? target : "") +
                               ": refused on the disk's path");
      }
      return OkStatus();
    }
    // Whiteouts: ".wh.NAME" deletes NAME below; ".wh..wh..opq" empties the dir.
    size_t slash = name.rfind('/');
    std::string dir = slash == std::string::npos ? "" : name.substr(0, slash);
    std::string base = name.substr(slash == std::string::npos ? 0 : slash + 1);
    if (base.starts_with(".wh.")) {
      if (base == ".wh..wh..opq") {
        if (dir.empty() || AboveOther(dir)) Remove("/" + other, false);
      } else {
        WhiteoutOther((dir.empty() ? "" : dir + "/") + base.substr(4));
      }
      if (name == ".wh.disk" || (dir == "" && base == ".wh..wh..opq")) {
        // Everything in /disk (the other file was handled above).
        for (const auto& [key, path] : std::map<std::string, std::string>(files)) {
          if (!key.starts_with("/")) Remove(key, false);
        }
      } else if (InDisk(dir)) {
        std::string rel_dir = dir == "disk" ? "" : dir.substr(5);
        if (base == ".wh..wh..opq") {
          Remove(rel_dir, true);
        } else {
          Remove((rel_dir.empty() ? "" : rel_dir + "/") + base.substr(4), false);
        }
      }
      return OkStatus();
    }
    if (IsOther(name) && type != AE_IFDIR) {
      if (type != AE_IFREG) return InvalidArgument("tar entry " + Quote(name) + " has an unsupported type");
      return ExtractFile(a, e, "/" + name);
    }
    // A file where a directory above the disk should be hides it.
    if (AboveOther(name) && type != AE_IFDIR) Remove("/" + other, false);
    if (!InDisk(name) || type == AE_IFDIR) return OkStatus();
    if (name == "disk") return InvalidArgument("tar entry \"disk\" is a file, not a directory");
    if (type != AE_IFREG) return InvalidArgument("tar entry " + Quote(name) + " has an unsupported type");
    return ExtractFile(a, e, name.substr(5));
  }
};

DiskExtractor::DiskExtractor(std::string work_dir, ExtractLimits limits, bool headers_only, std::string other)
    : impl_(new Impl) {
  impl_->work_dir = std::move(work_dir);
  impl_->headers_only = headers_only;
  impl_->other = std::move(other);
  impl_->limits = limits;
}

DiskExtractor::~DiskExtractor() = default;

Status DiskExtractor::AddLayer(oci::BlobReader& blob, const oci::Descriptor& desc, const oci::Digest& diff_id,
                               const std::function<void(uint64_t)>& on_bytes) {
  ASSIGN_OR_RETURN(Codec codec, CodecForMediaType(desc.media_type));
  LayerStream stream(blob, desc, codec, impl_->limits.max_layer_bytes, on_bytes);
  RETURN_IF_ERROR(impl_->failed);
  // A headers-only pass writes nothing: no budget to take from the disk.
  auto free = impl_->headers_only ? StatusOr<uint64_t>(UINT64_MAX) : FreeBytes(impl_->work_dir);
  Status s = free.status();
  if (free.ok()) {
    const uint64_t reserve = impl_->limits.free_space_reserve;
    impl_->write_budget = *free > reserve ? *free - reserve : 0;
    s = impl_->Extract(stream, desc, diff_id);
  }
  if (s.code() == Code::kCorrupt) {
    if (Status damaged = stream.CheckDigestAfterError(desc); !damaged.ok()) s = damaged;
  }
  if (!s.ok()) {
    // Whatever the layer wrote is unverified: nothing of it may be taken.
    impl_->Remove("", true);
    impl_->failed = s;
  }
  return s;
}

Status DiskExtractor::Impl::Extract(LayerStream& stream, const oci::Descriptor& desc, const oci::Digest& diff_id) {
  ReadContext ctx{&stream};
  std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
  archive_read_support_format_tar(a.get());
  if (archive_read_open(a.get(), &ctx, nullptr, ReadCallback, nullptr) != ARCHIVE_OK) {
    if (!ctx.error.ok()) return ctx.error.Annotate("layer " + desc.digest.str());
    return Corrupt("layer " + desc.digest.str() + " is not a tar stream: " + ArchiveError(a.get()));
  }
  archive_entry* e;
  for (;;) {
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      if (!ctx.error.ok()) return ctx.error.Annotate("layer " + desc.digest.str());
      return Corrupt("layer " + desc.digest.str() + ": " + ArchiveError(a.get()));
    }
    Status s = HandleEntry(a.get(), e);
    if (!ctx.error.ok()) return ctx.error.Annotate("layer " + desc.digest.str());
    if (!s.ok()) return s.Annotate("layer " + desc.digest.str());
  }
  // Whatever follows the end-of-archive blocks still counts for the digests.
  for (;;) {
    auto piece = stream.Next();
    if (!piece.ok()) return piece.status().Annotate("layer " + desc.digest.str());
    if (piece->empty()) break;
  }
  return stream.Verify(desc, diff_id);
}

std::vector<std::string> DiskExtractor::Disks() const {
  std::vector<std::string> out;
  for (const auto& [name, path] : impl_->files) {
    if (!name.starts_with("/")) out.push_back(name);
  }
  return out;
}

StatusOr<DiskExtractor::Taken> DiskExtractor::Take(const std::string& name) {
  RETURN_IF_ERROR(impl_->failed);
  auto& files = impl_->files;
  std::map<std::string, std::string>::iterator it;
  if (name.empty()) {
    if (files.empty()) return NotFound("the image has no file in /disk");
    if (files.size() > 1) {
      std::vector<std::string> names;
      for (const auto& [n, p] : files) names.push_back(n);
      return InvalidArgument("the image has " + std::to_string(files.size()) + " files in /disk (" +
                             QuoteList(names) + "): name one with path");
    }
    it = files.begin();
  } else {
    it = files.find(name);
    if (it == files.end()) return NotFound("the image has no file " + Quote(name.starts_with("/") ? name : "/disk/" + name));
  }
  // The one file kept is flushed before it is handed over to be published
  // (a headers-only pass has no file).
  if (!it->second.empty()) {
    int fd = ::open(it->second.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return IoError("opening " + it->second, errno);
    int synced = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (synced != 0) return IoError("flushing " + it->second, err);
  }
  const Impl::Owner& o = impl_->owners[it->first];
  Taken taken{it->first, it->second, o.uid, o.gid, o.mode};
  files.erase(it);
  return taken;
}

Status CheckReadableByQemu(const DiskExtractor::Taken& d) {
  if ((d.uid == kQemuUid && (d.mode & 0400)) || (d.gid == kQemuGid && (d.mode & 0040)) || (d.mode & 0004)) {
    return OkStatus();
  }
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", d.mode & 07777);
  std::string shown = d.name.starts_with("/") ? d.name : "/disk/" + d.name;
  return InvalidArgument(OneLine(shown) + " is owned by " + std::to_string(d.uid) + ":" +
                         std::to_string(d.gid) + " with mode " + mode + ": qemu (UID 107) cannot read it; " +
                         "add it with --chown=107:107 or make it world-readable (0444)");
}

}  // namespace regdisk::layer
