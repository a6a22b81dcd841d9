#include "disk/format.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "disk/qcow2.h"

namespace regdisk::disk {
namespace {

// A raw disk is a whole number of sectors.
constexpr uint64_t kSectorSize = 512;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { ::close(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

const char* FileKind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// Reads up to `len` bytes from `offset`; fewer if the file is shorter.
StatusOr<std::string> ReadAt(int fd, const std::string& path, uint64_t offset, size_t len) {
  std::string head(len, '\0');
  size_t got = 0;
  while (got < len) {
    ssize_t n = ::pread(fd, head.data() + got, len - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError(path + ": reading", errno);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  head.resize(got);
  return head;
}

bool HasQcow2Magic(std::string_view head) {
  constexpr std::string_view kMagic("QFI\xfb", 4);
  static_assert(kQcow2Magic == 0x514649fb);
  return head.starts_with(kMagic);
}

Status CheckRawSize(const std::string& path, uint64_t size) {
  if (size == 0) return InvalidArgument(path + ": raw disk is empty");
  if (size % kSectorSize != 0) {
    return InvalidArgument(path + ": raw disk size " + std::to_string(size) + " is not a multiple of " +
                           std::to_string(kSectorSize) + " bytes");
  }
  if (size > kMaxVirtualSize) {
    return InvalidArgument(path + ": raw disk size " + std::to_string(size) + " bytes is over the limit of " +
                           std::to_string(kMaxVirtualSize) + " bytes (16 TiB)");
  }
  return OkStatus();
}

}  // namespace

const char* FormatName(Format f) {
  switch (f) {
    case Format::kRaw: return "raw";
    case Format::kQcow2: return "qcow2";
  }
  return "unknown";
}

StatusOr<Format> ParseFormat(std::string_view name) {
  if (name == "raw") return Format::kRaw;
  if (name == "qcow2") return Format::kQcow2;
  return InvalidArgument("unknown disk format \"" + std::string(name) +
                         "\": supported formats are raw, qcow2");
}

StatusOr<DiskInfo> InspectHead(std::string_view head, uint64_t file_size, std::optional<Format> declared,
                               const std::string& path) {
  DiskInfo info;
  info.file_size = file_size;
  info.format = HasQcow2Magic(head) ? Format::kQcow2 : Format::kRaw;

  if (declared == Format::kQcow2 && info.format == Format::kRaw) {
    return InvalidArgument(path + ": declared qcow2 but the file is raw (no qcow2 header)");
  }
  if (declared == Format::kRaw && info.format == Format::kQcow2) {
    // A guest would see the qcow2 metadata as its disk, and whatever later
    // probes the file would take it for a qcow2, backing file and all.
    return InvalidArgument(path +
                           ": declared raw but the file is a qcow2 image: refusing to treat a qcow2 as raw");
  }

  if (info.format == Format::kRaw) {
    RETURN_IF_ERROR(CheckRawSize(path, info.file_size));
    info.virtual_size = info.file_size;
    return info;
  }
  auto header = Qcow2Header::Parse(head);
  if (!header.ok()) return header.status().Annotate(path);
  RETURN_IF_ERROR(header->CheckSafe().Annotate(path));
  RETURN_IF_ERROR(header->CheckTables(info.file_size).Annotate(path));
  info.virtual_size = header->size;
  return info;
}

StatusOr<DiskInfo> Inspect(const std::string& path, std::optional<Format> declared) {
  // O_NONBLOCK: opening a FIFO would otherwise wait for a writer before
  // fstat can refuse it. O_NOCTTY: a terminal must not become ours.
  const int raw_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (raw_fd < 0) return IoError(path, errno);
  Fd fd(raw_fd);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return IoError(path + ": fstat", errno);
  if (!S_ISREG(st.st_mode)) {
    return InvalidArgument(path + ": not a regular file (" + FileKind(st.st_mode) + ")");
  }

  ASSIGN_OR_RETURN(std::string head, ReadAt(fd.get(), path, 0, std::min<uint64_t>(st.st_size, kInspectHeadBytes)));
  ASSIGN_OR_RETURN(DiskInfo info, InspectHead(head, static_cast<uint64_t>(st.st_size), declared, path));
  if (info.format == Format::kRaw) return info;
  ASSIGN_OR_RETURN(Qcow2Header header, Qcow2Header::Parse(head));
  // Both tables are bounded by CheckTables (8 MiB and 32 MiB, qemu's limits).
  for (auto table : {Qcow2Header::Table::kRefcount, Qcow2Header::Table::kL1}) {
    ASSIGN_OR_RETURN(std::string bytes,
                     ReadAt(fd.get(), path, header.TableOffset(table), header.TableBytes(table)));
    RETURN_IF_ERROR(header.CheckTableEntries(table, bytes, info.file_size).Annotate(path));
  }
  return info;
}

}  // namespace regdisk::disk
