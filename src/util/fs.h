// File-system helpers. Everything that publishes a file does it atomically:
// write a temp file in the same directory, fsync, rename, fsync the
// directory. A crash leaves the old file or the new one, never half of one.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace regdisk {

// A file being written to a temp name beside `path`. Commit() publishes it;
// destroying an uncommitted AtomicFile removes the temp file.
class AtomicFile {
 public:
  // Creates the temp file with `mode` (before umask).
  static StatusOr<AtomicFile> Create(const std::string& path, int mode = 0644);
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  ~AtomicFile();

  int fd() const { return fd_; }
  const std::string& temp_path() const { return temp_; }
  Status Write(const void* data, size_t len);
  Status Write(std::string_view s) { return Write(s.data(), s.size()); }
  // fsync, rename over `path`, fsync the directory.
  Status Commit() { return CommitAs(path_); }
  // The same, publishing under another name (same file system), for files
  // whose name is known only at the end (content-addressed blobs).
  Status CommitAs(const std::string& path);
  void Abandon();

 private:
  AtomicFile(std::string path, std::string temp, int fd)
      : path_(std::move(path)), temp_(std::move(temp)), fd_(fd) {}
  std::string path_, temp_;
  int fd_ = -1;
};

Status WriteFileAtomic(const std::string& path, std::string_view data, int mode = 0644);
// Reads a whole file, refusing one larger than `limit` bytes.
StatusOr<std::string> ReadFile(const std::string& path, uint64_t limit = 64 << 20);
// Creates `path` and any missing parents, each with `mode` (before umask);
// directories that exist are left as they are.
Status MakeDirs(const std::string& path, int mode = 0755);
Status WriteAll(int fd, const void* data, size_t len);
// pread/pwrite of exactly `len` bytes at `offset`; a short file is an error
// naming `what` (PreadAll), as is any I/O error.
Status PreadAll(int fd, void* buf, size_t len, uint64_t offset, const std::string& what);
Status PwriteAll(int fd, const void* data, size_t len, uint64_t offset, const std::string& what);
bool PathExists(const std::string& path);
// The names in a directory (not "." or ".."), sorted; empty when it cannot
// be read.
std::vector<std::string> ListDir(const std::string& dir);
// Removes a file or a whole tree; missing is not an error.
Status RemoveAll(const std::string& path);

// An exclusive advisory lock (flock) on `path`, created if missing. Held until
// destroyed. Works across threads (separate open file descriptions) and
// processes.
class FileLock {
 public:
  static StatusOr<FileLock> Acquire(const std::string& path);
  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

// A temp directory removed with everything in it when destroyed.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "regdisk");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace regdisk
