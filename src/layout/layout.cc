#include "layout/layout.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <set>

#include "oci/media_types.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace regdisk::layout {
namespace {

constexpr char kOciLayoutFile[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
constexpr char kTempDir[] = "/.regdisk-tmp";
constexpr char kLockFile[] = "/.regdisk.lock";
// Blob writers hold an flock on their temp file from right after creating
// it until it is renamed or removed, so a temp file whose lock is free
// belongs to a writer that died (a pull killed with SIGKILL) -- unless it
// is younger than this: the instant between creating and locking.
constexpr time_t kTempGraceSeconds = 60;

// Removes the temp files in `dir` that no live writer owns (see above).
// Safe against concurrent writers and sweepers: a file is unlinked only
// while this process holds its lock and it is still the file at that name.
GcResult SweepTemps(const std::string& dir) {
  GcResult result;
  DIR* dp = ::opendir(dir.c_str());
  if (dp == nullptr) return result;
  time_t now = ::time(nullptr);
  while (dirent* e = ::readdir(dp)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = dir + "/" + name;
    int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st, now_st;
    bool stale = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && now - st.st_mtime >= kTempGraceSeconds &&
                 ::flock(fd, LOCK_EX | LOCK_NB) == 0 && ::lstat(path.c_str(), &now_st) == 0 &&
                 now_st.st_ino == st.st_ino && now_st.st_dev == st.st_dev;
    if (stale && ::unlink(path.c_str()) == 0) {
      ++result.removed;
      result.bytes_freed += static_cast<uint64_t>(st.st_size);
    }
    ::close(fd);
  }
  ::closedir(dp);
  return result;
}

class FileReader : public oci::BlobReader {
 public:
  FileReader(int fd, uint64_t size) : fd_(fd), size_(size) {}
  ~FileReader() override { ::close(fd_); }
  StatusOr<size_t> Read(void* buf, size_t len) override {
    for (;;) {
      ssize_t n = ::read(fd_, buf, len);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return IoError("reading blob", errno);
    }
  }
  uint64_t size() const override { return size_; }

 private:
  int fd_;
  uint64_t size_;
};

class FileWriter : public oci::BlobWriter {
 public:
  FileWriter(const Layout* layout, AtomicFile file) : layout_(layout), file_(std::move(file)) {}
  Status Write(const void* data, size_t len) override {
    hash_.Update(data, len);
    size_ += len;
    return file_.Write(data, len);
  }
  StatusOr<oci::Descriptor> Commit(const std::string& media_type,
                                   const std::optional<oci::Digest>& expected) override {
    oci::Digest got = oci::Digest::FromHex(hash_.FinishHex());
    if (expected && *expected != got) {
      file_.Abandon();
      return Corrupt("blob digest mismatch: expected " + expected->str() + ", got " + got.str());
    }
    std::string path = layout_->BlobPath(got);
    created_ = !PathExists(path);
    if (created_) {
      RETURN_IF_ERROR(file_.CommitAs(path));
    } else {
      file_.Abandon();  // same content by definition
    }
    oci::Descriptor d;
    d.media_type = media_type;
    d.digest = got;
    d.size = size_;
    return d;
  }
  bool created() const override { return created_; }

 private:
  const Layout* layout_;
  bool created_ = false;
  AtomicFile file_;
  Sha256 hash_;
  uint64_t size_ = 0;
};

// Adds the digests reachable from `d` to `live`.
Status MarkLive(Layout& layout, const oci::Descriptor& d, std::set<oci::Digest>& live, int depth) {
  if (depth > oci::kMaxIndexDepth) {
    return InvalidArgument("image index nesting deeper than " + std::to_string(oci::kMaxIndexDepth) + " levels");
  }
  if (!live.insert(d.digest).second) return OkStatus();
  if (!oci::IsManifestType(d.media_type) && !oci::IsIndexType(d.media_type)) return OkStatus();
  ASSIGN_OR_RETURN(bool have, layout.HasBlob(d.digest));
  if (!have) return OkStatus();  // a partial image: keep what is there
  ASSIGN_OR_RETURN(std::string raw, oci::ReadBlob(layout, d, oci::kMaxManifestBytes));
  if (oci::IsIndexType(d.media_type)) {
    ASSIGN_OR_RETURN(oci::Index index, oci::ParseIndex(raw));
    for (const auto& m : index.manifests) RETURN_IF_ERROR(MarkLive(layout, m, live, depth + 1));
  } else {
    ASSIGN_OR_RETURN(oci::Manifest m, oci::ParseManifest(raw));
    live.insert(m.config.digest);
    for (const auto& l : m.layers) live.insert(l.digest);
  }
  return OkStatus();
}

}  // namespace

std::string DefaultStorePath() {
  if (const char* s = std::getenv("REGDISK_STORE"); s && *s) return s;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return std::string(x) + "/regdisk/store";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/root") + "/.local/share/regdisk/store";
}

StatusOr<std::unique_ptr<Layout>> Layout::Open(const std::string& root, bool create) {
  std::string marker = root + "/oci-layout";
  if (!PathExists(marker)) {
    if (!create) return NotFound(root + ": not an OCI image layout (no oci-layout file)");
    RETURN_IF_ERROR(MakeDirs(root + "/blobs/sha256"));
    RETURN_IF_ERROR(MakeDirs(root + kTempDir));
    auto lock = FileLock::Acquire(root + kLockFile);
    if (!lock.ok()) return lock.status();
    if (!PathExists(root + "/index.json")) {
      oci::Index empty;
      empty.media_type = oci::media::kOciIndex;
      RETURN_IF_ERROR(WriteFileAtomic(root + "/index.json", oci::EncodeIndex(empty)));
    }
    RETURN_IF_ERROR(WriteFileAtomic(marker, kOciLayoutFile));
  } else {
    ASSIGN_OR_RETURN(std::string text, ReadFile(marker, 4096));
    if (text.find("\"1.0.0\"") == std::string::npos) {
      return Unsupported(root + ": unsupported imageLayoutVersion in oci-layout");
    }
    RETURN_IF_ERROR(MakeDirs(root + kTempDir));
    SweepTemps(root + kTempDir);  // what killed writers left
  }
  return std::unique_ptr<Layout>(new Layout(root));
}

StatusOr<bool> Layout::HasBlob(const oci::Digest& digest) {
  return PathExists(BlobPath(digest));
}

StatusOr<std::unique_ptr<oci::BlobReader>> Layout::OpenBlob(const oci::Digest& digest) {
  int fd = ::open(BlobPath(digest).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound("blob " + digest.str() + " not found in " + root_);
    return IoError("opening blob " + digest.str(), errno);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Corrupt("blob " + digest.str() + " in " + root_ + " is not a regular file");
  }
  return std::unique_ptr<oci::BlobReader>(new FileReader(fd, static_cast<uint64_t>(st.st_size)));
}

Status Layout::ReadAt(const oci::Digest& digest, uint64_t offset, char* buf, size_t len) {
  int fd = ::open(BlobPath(digest).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound("blob " + digest.str() + " not found in " + root_);
    return IoError("opening blob " + digest.str(), errno);
  }
  Status s = PreadAll(fd, buf, len, offset, "blob " + digest.str());
  ::close(fd);
  return s;
}

StatusOr<std::unique_ptr<oci::BlobWriter>> Layout::CreateBlob() {
  ASSIGN_OR_RETURN(AtomicFile f, AtomicFile::Create(root_ + kTempDir + "/blob", 0644));
  if (::flock(f.fd(), LOCK_EX) != 0) return IoError("locking " + f.temp_path(), errno);  // see SweepTemps
  return std::unique_ptr<oci::BlobWriter>(new FileWriter(this, std::move(f)));
}

Status Layout::DeleteBlob(const oci::Digest& digest) {
  if (::unlink(BlobPath(digest).c_str()) != 0) return IoError("removing blob " + digest.str(), errno);
  return OkStatus();
}

StatusOr<oci::Index> Layout::ReadIndex() {
  ASSIGN_OR_RETURN(std::string raw, ReadFile(root_ + "/index.json", oci::kMaxManifestBytes));
  auto index = oci::ParseIndex(raw);
  if (!index.ok()) return index.status().Annotate(root_ + "/index.json");
  return index;
}

Status Layout::WriteIndex(const oci::Index& index) {
  return WriteFileAtomic(root_ + "/index.json", oci::EncodeIndex(index));
}

StatusOr<oci::Descriptor> Layout::FindTag(const std::string& tag) {
  ASSIGN_OR_RETURN(oci::Index index, ReadIndex());
  for (const auto& d : index.manifests) {
    auto it = d.annotations.find(oci::annotation::kRefName);
    if (it != d.annotations.end() && it->second == tag) return d;
  }
  return NotFound("image \"" + tag + "\" not found in " + root_);
}

StatusOr<oci::RawManifest> Layout::GetManifest(const std::string& ref) {
  oci::RawManifest raw;
  if (ref.starts_with("sha256:")) {
    ASSIGN_OR_RETURN(raw.descriptor.digest, oci::Digest::Parse(ref));
  } else {
    ASSIGN_OR_RETURN(raw.descriptor, FindTag(ref));
    raw.descriptor.annotations.clear();
  }
  ASSIGN_OR_RETURN(raw.bytes, oci::ReadBlob(*this, raw.descriptor.digest, oci::kMaxManifestBytes));
  raw.descriptor.size = raw.bytes.size();
  if (raw.descriptor.media_type.empty()) {
    ASSIGN_OR_RETURN(raw.descriptor.media_type, oci::SniffMediaType(raw.bytes));
  }
  return raw;
}

Status Layout::PutManifest(const oci::RawManifest& m, const std::string& tag) {
  ASSIGN_OR_RETURN(bool have, HasBlob(m.descriptor.digest));
  if (!have) {
    ASSIGN_OR_RETURN(auto writer, CreateBlob());
    RETURN_IF_ERROR(writer->Write(m.bytes.data(), m.bytes.size()));
    RETURN_IF_ERROR(writer->Commit(m.descriptor.media_type, m.descriptor.digest).status());
  }
  if (tag.empty()) return OkStatus();
  Status tagged = SetTag(m, tag);
  if (!tagged.ok() && !have) (void)DeleteBlob(m.descriptor.digest);
  return tagged;
}

Status Layout::SetTag(const oci::RawManifest& m, const std::string& tag) {
  ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(root_ + kLockFile));
  ASSIGN_OR_RETURN(oci::Index index, ReadIndex());
  std::erase_if(index.manifests, [&](const oci::Descriptor& d) {
    auto it = d.annotations.find(oci::annotation::kRefName);
    return it != d.annotations.end() && it->second == tag;
  });
  oci::Descriptor entry;
  entry.media_type = m.descriptor.media_type;
  entry.digest = m.descriptor.digest;
  entry.size = m.bytes.size();
  entry.annotations[oci::annotation::kRefName] = tag;
  index.manifests.push_back(entry);
  return WriteIndex(index);
}

Status Layout::Untag(const std::string& tag) {
  ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(root_ + kLockFile));
  ASSIGN_OR_RETURN(oci::Index index, ReadIndex());
  size_t removed = std::erase_if(index.manifests, [&](const oci::Descriptor& d) {
    auto it = d.annotations.find(oci::annotation::kRefName);
    return it != d.annotations.end() && it->second == tag;
  });
  if (removed == 0) return NotFound("image \"" + tag + "\" not found in " + root_);
  return WriteIndex(index);
}

StatusOr<std::vector<std::pair<std::string, oci::Descriptor>>> Layout::ListTags() {
  ASSIGN_OR_RETURN(oci::Index index, ReadIndex());
  std::vector<std::pair<std::string, oci::Descriptor>> out;
  for (const auto& d : index.manifests) {
    auto it = d.annotations.find(oci::annotation::kRefName);
    if (it != d.annotations.end()) out.emplace_back(it->second, d);
  }
  return out;
}

StatusOr<GcResult> Layout::Gc() {
  ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(root_ + kLockFile));
  ASSIGN_OR_RETURN(oci::Index index, ReadIndex());
  std::set<oci::Digest> live;
  for (const auto& d : index.manifests) RETURN_IF_ERROR(MarkLive(*this, d, live, 0));

  GcResult result = SweepTemps(root_ + kTempDir);
  std::string dir = root_ + "/blobs/sha256";
  DIR* dp = ::opendir(dir.c_str());
  if (dp == nullptr) return IoError("listing " + dir, errno);
  while (dirent* e = ::readdir(dp)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = dir + "/" + name;
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) continue;
    auto d = oci::Digest::Parse("sha256:" + name);
    if (d.ok() && live.count(*d)) continue;
    if (::unlink(path.c_str()) == 0) {
      ++result.removed;
      result.bytes_freed += static_cast<uint64_t>(st.st_size);
    }
  }
  ::closedir(dp);
  return result;
}

}  // namespace regdisk::layout
