#include "disk/overlay.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk/qcow2.h"
#include "util/fs.h"

namespace regdisk::disk {
namespace {

constexpr uint32_t kClusterBits = 16;
constexpr uint64_t kCluster = 1ull << kClusterBits;
constexpr uint32_t kBackingFormatExtension = 0xe2792aca;

void Put32(std::string& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<char>(v >> (24 - 8 * i));
}
void Put64(std::string& b, size_t at, uint64_t v) {
  Put32(b, at, static_cast<uint32_t>(v >> 32));
  Put32(b, at + 4, static_cast<uint32_t>(v));
}

StatusOr<uint64_t> VirtualSize(const std::string& base, Format format) {
  if (format == Format::kRaw) {
    struct stat st;
    if (::stat(base.c_str(), &st) != 0) return IoError(base, errno);
    return static_cast<uint64_t>(st.st_size);
  }
  int fd = ::open(base.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError(base, errno);
  std::string head(4096, '\0');
  ssize_t n = ::pread(fd, head.data(), head.size(), 0);
  ::close(fd);
  if (n < 0) return IoError(base, errno);
  head.resize(static_cast<size_t>(n));
  ASSIGN_OR_RETURN(Qcow2Header h, Qcow2Header::Parse(head));
  return h.size;
}

// Writes an empty qcow2 v3 of `size` bytes to `path`; with a backing file
// when `base` is not empty.
Status WriteEmptyQcow2(const std::string& path, uint64_t size, const std::string& base,
                       const std::string& format) {
  // One L2 table maps kCluster / 8 clusters; the L1 table has one entry per L2.
  const uint64_t l2_span = kCluster / 8 * kCluster;
  const uint64_t l1_size = (size + l2_span - 1) / l2_span;
  const uint64_t l1_clusters = std::max<uint64_t>(1, (l1_size * 8 + kCluster - 1) / kCluster);
  const uint64_t clusters = 3 + l1_clusters;
  // One refcount block counts kCluster / 2 clusters (16-bit refcounts).
  if (clusters > kCluster / 2 || size > kMaxVirtualSize) {
    return InvalidArgument("virtual size too large for a qcow2 image: " + std::to_string(size));
  }

  std::string image(clusters * kCluster, '\0');
  // Header (qcow2 v3, 104 bytes), then for an overlay the backing format
  // extension, the end extension, and the backing file name.
  Put32(image, 0, kQcow2Magic);
  Put32(image, 4, 3);
  if (!base.empty()) {
    const size_t ext = 104, ext_end = ext + 8 + ((format.size() + 7) / 8) * 8, name_at = ext_end + 8;
    Put64(image, 8, name_at);
    Put32(image, 16, static_cast<uint32_t>(base.size()));
    Put32(image, ext, kBackingFormatExtension);
    Put32(image, ext + 4, static_cast<uint32_t>(format.size()));
    image.replace(ext + 8, format.size(), format);
    image.replace(name_at, base.size(), base);
  }
  Put32(image, 20, kClusterBits);
  Put64(image, 24, size);
  Put32(image, 36, static_cast<uint32_t>(l1_size));
  Put64(image, 40, 3 * kCluster);  // L1 table
  Put64(image, 48, 1 * kCluster);  // refcount table
  Put32(image, 56, 1);             // refcount table clusters
  Put32(image, 96, 4);             // refcount order: 16-bit refcounts
  Put32(image, 100, 104);          // header length
  // The refcount table points at the refcount block, which counts every
  // cluster of the file once.
  Put64(image, 1 * kCluster, 2 * kCluster);
  for (uint64_t c = 0; c < clusters; ++c) {
    image[2 * kCluster + 2 * c + 1] = 1;
  }

  ASSIGN_OR_RETURN(AtomicFile out, AtomicFile::Create(path, 0644));
  RETURN_IF_ERROR(out.Write(image));
  return out.Commit();
}

}  // namespace

Status CreateOverlay(const std::string& base, Format base_format, const std::string& overlay) {
  if (base.empty() || base[0] != '/' || base.size() > 1023) {
    return InvalidArgument("overlay backing file must be an absolute path under 1 KiB: " + base);
  }
  ASSIGN_OR_RETURN(uint64_t size, VirtualSize(base, base_format));
  return WriteEmptyQcow2(overlay, size, base, FormatName(base_format)).Annotate("creating overlay " + overlay);
}

std::string NbdBacking(const std::string& socket) { return "nbd+unix:///?socket=" + socket; }

Status CreateNbdOverlay(const std::string& socket, Format base_format, uint64_t virtual_size,
                        const std::string& overlay) {
  // qemu takes the socket path as a URI query value: refuse what it would
  // read differently.
  if (socket.empty() || socket[0] != '/' || socket.size() > 1000 ||
      socket.find_first_of("&#%?\"' \t\n") != std::string::npos) {
    return InvalidArgument("overlay backing socket must be an absolute path without URI delimiters: " + socket);
  }
  return WriteEmptyQcow2(overlay, virtual_size, NbdBacking(socket), FormatName(base_format))
      .Annotate("creating overlay " + overlay);
}

Status CreateEmptyDisk(const std::string& path, uint64_t size) {
  if (size == 0) return InvalidArgument("an empty disk needs a capacity above 0 bytes");
  // qemu-img rounds a size up to whole 512-byte sectors; so do we.
  return WriteEmptyQcow2(path, (size + 511) / 512 * 512, "", "").Annotate("creating empty disk " + path);
}

}  // namespace regdisk::disk
