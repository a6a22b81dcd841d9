#include "util/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <random>

namespace regdisk {
namespace {

std::string DirOf(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string RandomSuffix() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  static const char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string s(10, 'x');
  for (auto& c : s) c = kChars[rng() % 36];
  return s;
}

Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError("opening " + dir, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return IoError("syncing " + dir, err);
  return OkStatus();
}

}  // namespace

StatusOr<AtomicFile> AtomicFile::Create(const std::string& path, int mode) {
  auto slash = path.rfind('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  std::string temp = DirOf(path) + "/." + base + ".tmp-" + RandomSuffix();
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return IoError("creating " + temp, errno);
  return AtomicFile(path, temp, fd);
}

AtomicFile::AtomicFile(AtomicFile&& o) noexcept
    : path_(std::move(o.path_)), temp_(std::move(o.temp_)), fd_(o.fd_) {
  o.fd_ = -1;
  o.temp_.clear();
}

AtomicFile::~AtomicFile() { Abandon(); }

Status AtomicFile::Write(const void* data, size_t len) {
  return WriteAll(fd_, data, len).Annotate("writing " + path_);
}

Status AtomicFile::CommitAs(const std::string& path) {
  if (fd_ < 0) return Internal("commit of a closed file " + path);
  if (::fsync(fd_) != 0) return IoError("syncing " + temp_, errno);
  // Renamed while still open: a lock its owner holds on the fd (see
  // layout's temp sweep) lasts until the temp name is gone.
  int renamed = ::rename(temp_.c_str(), path.c_str());
  int err = errno;
  ::close(fd_);
  fd_ = -1;
  if (renamed != 0) {
    ::unlink(temp_.c_str());
    temp_.clear();
    return IoError("renaming to " + path, err);
  }
  temp_.clear();
  return SyncDir(DirOf(path));
}

void AtomicFile::Abandon() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!temp_.empty()) ::unlink(temp_.c_str());
  temp_.clear();
}

Status WriteAll(int fd, const void* data, size_t len) {
  auto* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = ::write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError("write", errno);
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return OkStatus();
}

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") out.push_back(n);
    }
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Status PreadAll(int fd, void* buf, size_t len, uint64_t offset, const std::string& what) {
  auto* p = static_cast<char*>(buf);
  for (size_t got = 0; got < len;) {
    ssize_t n = ::pread(fd, p + got, len - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError(what + ": reading", errno);
    if (n == 0) return Corrupt(what + ": ends before byte " + std::to_string(offset + len));
    got += static_cast<size_t>(n);
  }
  return OkStatus();
}

Status PwriteAll(int fd, const void* data, size_t len, uint64_t offset, const std::string& what) {
  auto* p = static_cast<const char*>(data);
  for (size_t put = 0; put < len;) {
    ssize_t n = ::pwrite(fd, p + put, len - put, static_cast<off_t>(offset + put));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError(what + ": writing", errno);
    put += static_cast<size_t>(n);
  }
  return OkStatus();
}

Status WriteFileAtomic(const std::string& path, std::string_view data, int mode) {
  ASSIGN_OR_RETURN(AtomicFile f, AtomicFile::Create(path, mode));
  RETURN_IF_ERROR(f.Write(data));
  return f.Commit();
}

StatusOr<std::string> ReadFile(const std::string& path, uint64_t limit) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("opening " + path, errno);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return IoError("reading " + path, err);
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > limit) {
      ::close(fd);
      return InvalidArgument(path + ": larger than the limit of " + std::to_string(limit) +
                             " bytes");
    }
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Status MakeDirs(const std::string& path, int mode) {
  if (path.empty()) return InvalidArgument("creating directory: empty path");
  // Each prefix ending before a '/' (and the whole path) in turn.
  for (size_t end = path.find('/', 1);; end = path.find('/', end + 1)) {
    std::string dir = path.substr(0, end);
    if (::mkdir(dir.c_str(), static_cast<mode_t>(mode)) != 0 && errno != EEXIST) {
      return IoError("creating directory " + dir, errno);
    }
    if (end == std::string::npos) break;
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return IoError("creating directory " + path, errno);
  if (!S_ISDIR(st.st_mode)) return IoError("creating directory " + path, ENOTDIR);
  return OkStatus();
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

Status RemoveAll(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return Status(Code::kIo, "removing " + path + ": " + ec.message());
  return OkStatus();
}

StatusOr<FileLock> FileLock::Acquire(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("opening lock " + path, errno);
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    int err = errno;
    ::close(fd);
    return IoError("locking " + path, err);
  }
  return FileLock(fd);
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);
}

TempDir::TempDir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/" + prefix + "-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
  path_ = tmpl;
}

TempDir::~TempDir() { (void)RemoveAll(path_); }

}  // namespace regdisk
