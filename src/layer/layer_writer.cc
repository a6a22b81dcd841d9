#include "layer/layer_writer.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <vector>

#include "layer/chunked_writer.h"
#include "layer/compressor.h"
#include "oci/media_types.h"
#include "util/sha256.h"

namespace regdisk::layer {

StatusOr<Compression> ParseCompression(std::string_view name) {
  if (name == "none") return Compression::kNone;
  if (name == "gzip") return Compression::kGzip;
  if (name == "zstd") return Compression::kZstd;
  return InvalidArgument("compression \"" + std::string(name) + "\": expected none, gzip or zstd");
}

const char* CompressionName(Compression c) {
  switch (c) {
    case Compression::kNone: return "none";
    case Compression::kGzip: return "gzip";
    case Compression::kZstd: return "zstd";
  }
  return "unknown";
}

const char* LayerMediaType(Compression c) {
  switch (c) {
    case Compression::kNone: return oci::media::kOciLayerTar;
    case Compression::kGzip: return oci::media::kOciLayerGzip;
    case Compression::kZstd: return oci::media::kOciLayerZstd;
  }
  return oci::media::kOciLayerTar;
}

Codec CodecOf(Compression c) {
  switch (c) {
    case Compression::kNone: return Codec::kNone;
    case Compression::kGzip: return Codec::kGzip;
    case Compression::kZstd: return Codec::kZstd;
  }
  return Codec::kNone;
}

namespace {

constexpr size_t kChunk = 4 << 20;  // file data is read (and holes fed) in pieces this big

Status ValidateName(std::string_view name) {
  auto bad = [&](const char* why) {
    return InvalidArgument("layer entry name " + Quote(name) + ": " + why);
  };
  if (name.empty()) return bad("empty");
  if (name.front() == '/') return bad("must be relative");
  // libarchive converts non-ASCII names through the process locale (and
  // fails in the C locale), so they would make the bytes locale-dependent.
  for (unsigned char c : name) {
    if (c < 0x20 || c > 0x7e) return bad("only printable ASCII characters are allowed");
  }
  size_t start = 0;
  for (;;) {
    const size_t end = name.find('/', start);
    const std::string_view part = name.substr(start, end - start);
    if (part.empty()) return bad("empty path component");
    if (part == "." || part == "..") return bad("'.' and '..' components are not allowed");
    if (end == std::string_view::npos) return OkStatus();
    start = end + 1;
  }
}

Status ValidateOwner(std::string_view name, const EntryOwner& owner) {
  if (owner.uid < 0 || owner.gid < 0 || (owner.mode & ~07777) != 0) {
    return InvalidArgument("layer entry " + Quote(name) + ": bad owner uid " +
                           std::to_string(owner.uid) + " gid " + std::to_string(owner.gid) +
                           " mode " + std::to_string(owner.mode));
  }
  return OkStatus();
}

// The data runs of the first `size` bytes of `fd`, from SEEK_DATA/SEEK_HOLE.
// File systems without hole support report the whole file as data.
StatusOr<std::vector<Extent>> DataExtents(int fd, int64_t size, const std::string& path) {
  std::vector<Extent> extents;
  int64_t pos = 0;
  while (pos < size) {
    const off_t data = lseek(fd, pos, SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;  // only a hole is left
    if (data < 0) return IoError("finding data in " + path, errno);
    if (data >= size) break;
    const off_t hole = lseek(fd, data, SEEK_HOLE);
    if (hole < 0) return IoError("finding holes in " + path, errno);
    const int64_t end = std::min<int64_t>(hole, size);
    extents.push_back({data, end - data});
    pos = end;
  }
  return extents;
}

struct FileCloser {
  int fd;
  ~FileCloser() { close(fd); }
};

using EntryPtr = std::unique_ptr<archive_entry, decltype(&archive_entry_free)>;

}  // namespace

struct LayerWriter::Impl {
  Impl(std::unique_ptr<oci::BlobWriter> blob, LayerOptions opts)
      : out(std::move(blob)), options(opts) {
    status = Open();
  }
  ~Impl() {
    if (ar == nullptr) return;
    // With `status` set the callback refuses writes, so closing writes
    // nothing; close even a failed archive, as libarchive 3.6 frees its
    // client state only there (archive_write_fail + free leaks it).
    if (status.ok()) status = Internal("layer writer: discarded");
    archive_write_close(ar);
    archive_write_free(ar);
  }

  Status Open() {
    if (out == nullptr) return InvalidArgument("layer writer: no blob writer");
    if (options.chunk_size != 0) {
      DiskIndex probe;
      probe.chunk_size = options.chunk_size;
      RETURN_IF_ERROR(ValidateIndex(probe, 0).Annotate("layer writer"));
    }
    ASSIGN_OR_RETURN(compressor, Compressor::Create(options, out.get()));
    ar = archive_write_new();
    if (ar == nullptr) return Internal("libarchive: cannot create a writer");
    // ustar headers, with PAX extended headers only where ustar cannot say
    // it (sparse maps, long names, big numbers). Unblocked: every write goes
    // straight to WriteCallback and the stream ends with exactly the two
    // zero blocks of the end-of-archive marker, no record padding.
    if (archive_write_set_format_pax_restricted(ar) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(ar, 0) != ARCHIVE_OK ||
        archive_write_open(ar, this, nullptr, &Impl::WriteCallback, nullptr) != ARCHIVE_OK) {
      return ArchiveError("opening the tar stream");
    }
    buf.resize(kChunk);
    return OkStatus();
  }

  // Receives the tar stream: hashes it (the diff_id) and compresses it.
  static la_ssize_t WriteCallback(archive*, void* client, const void* data, size_t len) {
    auto* self = static_cast<Impl*>(client);
    if (!self->status.ok()) return -1;
    self->tar_sha.Update(data, len);
    self->tar_bytes += len;
    Status st = self->compressor->Write(data, len);
    if (!st.ok()) {
      self->status = st;
      return -1;
    }
    return static_cast<la_ssize_t>(len);
  }

  // Records the outcome of a call; the first error sticks.
  Status Sticky(Status st) {
    if (status.ok()) status = std::move(st);
    return status;
  }

  // A libarchive failure. When the write callback failed, `status` already
  // holds the real cause and Sticky() keeps that one.
  Status ArchiveError(const std::string& what) {
    const char* msg = archive_error_string(ar);
    return Internal(what + ": " + (msg != nullptr ? msg : "libarchive error"));
  }

  EntryPtr NewEntry(std::string_view name, unsigned type, const EntryOwner& owner) {
    EntryPtr e(archive_entry_new(), &archive_entry_free);
    archive_entry_copy_pathname(e.get(), std::string(name).c_str());
    archive_entry_set_filetype(e.get(), type);
    archive_entry_set_perm(e.get(), owner.mode);
    archive_entry_set_uid(e.get(), owner.uid);
    archive_entry_set_gid(e.get(), owner.gid);
    archive_entry_set_mtime(e.get(), options.mtime, 0);
    return e;
  }

  Status WriteHeader(archive_entry* e, std::string_view name) {
    if (archive_write_header(ar, e) != ARCHIVE_OK) {
      return ArchiveError("writing the tar header of " + std::string(name));
    }
    return OkStatus();
  }

  Status WriteData(const char* p, size_t len, std::string_view name) {
    while (len > 0) {
      const la_ssize_t n = archive_write_data(ar, p, len);
      if (n <= 0) return ArchiveError("writing " + std::string(name) + " to the tar stream");
      p += n;
      len -= static_cast<size_t>(n);
    }
    return OkStatus();
  }

  Status AddDirectory(std::string_view name, const EntryOwner& owner) {
    RETURN_IF_ERROR(ValidateName(name));
    RETURN_IF_ERROR(ValidateOwner(name, owner));
    EntryPtr e = NewEntry(name, AE_IFDIR, owner);
    return WriteHeader(e.get(), name);
  }

  Status AddFile(std::string_view name, const std::string& src, const EntryOwner& owner,
                 bool sparse, const std::function<void(uint64_t)>& on_bytes) {
    RETURN_IF_ERROR(ValidateName(name));
    RETURN_IF_ERROR(ValidateOwner(name, owner));
    // O_NONBLOCK so that a FIFO is refused below instead of blocking here.
    const int fd = open(src.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return IoError("opening " + src, errno);
    FileCloser closer{fd};
    struct stat st;
    if (fstat(fd, &st) != 0) return IoError("reading the status of " + src, errno);
    if (!S_ISREG(st.st_mode)) return InvalidArgument(src + ": not a regular file");

    const int64_t size = st.st_size;
    std::vector<Extent> extents{{0, size}};
    if (sparse) {
      ASSIGN_OR_RETURN(extents, DataExtents(fd, size, src));
    }
    EntryPtr e = NewEntry(name, AE_IFREG, owner);
    archive_entry_set_size(e.get(), size);
    // A file without holes stays a plain entry that any tar reader knows.
    const bool holes = size > 0 && !(extents.size() == 1 && extents[0].length == size);
    if (holes) {
      for (const Extent& x : extents) archive_entry_sparse_add_entry(e.get(), x.offset, x.length);
      if (extents.empty()) archive_entry_sparse_add_entry(e.get(), size, 0);  // all hole
    }
    RETURN_IF_ERROR(WriteHeader(e.get(), name));
    if (options.chunk_size != 0) return AddChunks(fd, size, extents, src, name, on_bytes);

    // The writer takes the whole file, holes included, and drops the bytes
    // that fall in holes of the sparse map; holes are fed as zeros.
    int64_t pos = 0;
    for (const Extent& x : extents) {
      RETURN_IF_ERROR(WriteZeros(x.offset - pos, name, on_bytes));
      RETURN_IF_ERROR(CopyData(fd, x, src, name, on_bytes));
      pos = x.offset + x.length;
    }
    return WriteZeros(size - pos, name, on_bytes);
  }

  // v2: the headers (and the sparse map, which libarchive writes on the
  // first data call, hence the empty one) end the head member; then each
  // piece of data within one aligned chunk is a member of its own.
  Status AddChunks(int fd, int64_t size, const std::vector<Extent>& extents, const std::string& src,
                   std::string_view name, const std::function<void(uint64_t)>& on_bytes) {
    if (index != nullptr) return InvalidArgument("a v2 layer holds one file; " + Quote(name) + " is a second");
    if (archive_write_data(ar, buf.data(), 0) < 0) return ArchiveError("writing the sparse map of " + std::string(name));
    RETURN_IF_ERROR(compressor->EndMember());
    RETURN_IF_ERROR(compressor->Flush());
    first_member = compressor->members().size();
    index = std::make_unique<IndexBuilder>(options.chunk_size, CodecOf(options.compression),
                                           static_cast<uint64_t>(size));
    int64_t pos = 0;
    for (const Extent& piece : ChunkPieces(extents, options.chunk_size)) {
      RETURN_IF_ERROR(WriteZeros(piece.offset - pos, name, on_bytes));
      RETURN_IF_ERROR(CopyData(fd, piece, src, name, on_bytes));
      RETURN_IF_ERROR(compressor->EndMember());
      index->AddChunk(piece);
      pos = piece.offset + piece.length;
    }
    return WriteZeros(size - pos, name, on_bytes);
  }

  Status CopyData(int fd, const Extent& x, const std::string& src, std::string_view name,
                  const std::function<void(uint64_t)>& on_bytes) {
    for (int64_t off = x.offset, end = x.offset + x.length; off < end;) {
      const size_t want = static_cast<size_t>(std::min<int64_t>(buf.size(), end - off));
      const ssize_t n = pread(fd, buf.data(), want, off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return IoError("reading " + src, errno);
      if (n == 0) return Status(Code::kIo, "reading " + src + ": file shrank while being read");
      RETURN_IF_ERROR(WriteData(buf.data(), static_cast<size_t>(n), name));
      off += n;
      if (on_bytes) on_bytes(static_cast<uint64_t>(n));
    }
    return OkStatus();
  }

  Status WriteZeros(int64_t len, std::string_view name,
                    const std::function<void(uint64_t)>& on_bytes) {
    if (len <= 0) return OkStatus();
    std::fill(buf.begin(), buf.end(), 0);
    while (len > 0) {
      const size_t n = static_cast<size_t>(std::min<int64_t>(buf.size(), len));
      RETURN_IF_ERROR(WriteData(buf.data(), n, name));
      len -= static_cast<int64_t>(n);
      if (on_bytes) on_bytes(n);
    }
    return OkStatus();
  }

  // v2: the index entry's header (after the disk file's padding) is one
  // member, the index bytes another, the end of the archive a third.
  StatusOr<IndexAnchor> AppendIndex(DiskIndex& built) {
    if (index == nullptr) return InvalidArgument("a v2 layer needs its disk file");
    RETURN_IF_ERROR(compressor->Flush());
    ASSIGN_OR_RETURN(built, index->Build(compressor->members(), first_member));
    const std::string bytes = EncodeIndex(built);
    EntryPtr e = NewEntry(kIndexEntryName, AE_IFREG, {0, 0, 0444});
    archive_entry_set_size(e.get(), static_cast<int64_t>(bytes.size()));
    RETURN_IF_ERROR(WriteHeader(e.get(), kIndexEntryName));
    RETURN_IF_ERROR(compressor->EndMember());
    RETURN_IF_ERROR(compressor->Flush());
    IndexAnchor anchor;
    for (const auto& m : compressor->members()) anchor.offset += m.out;
    RETURN_IF_ERROR(WriteData(bytes.data(), bytes.size(), kIndexEntryName));
    RETURN_IF_ERROR(compressor->EndMember());
    RETURN_IF_ERROR(compressor->Flush());
    anchor.length = compressor->members().back().out;
    anchor.uncompressed_length = bytes.size();
    anchor.digest = oci::Digest::Of(bytes);
    anchor.chunk_size = options.chunk_size;
    return anchor;
  }

  StatusOr<LayerResult> Finish() {
    LayerResult r;
    if (options.chunk_size != 0) {
      DiskIndex built;
      ASSIGN_OR_RETURN(r.anchor, AppendIndex(built));
      r.index = std::move(built);
    }
    if (archive_write_close(ar) != ARCHIVE_OK) return ArchiveError("closing the tar stream");
    RETURN_IF_ERROR(compressor->Finish());
    ASSIGN_OR_RETURN(r.descriptor,
                     out->Commit(LayerMediaType(options.compression), std::nullopt));
    if (r.anchor) AnnotateAnchor(*r.anchor, r.descriptor.annotations);
    r.diff_id = oci::Digest::FromHex(tar_sha.FinishHex());
    r.uncompressed_size = tar_bytes;
    r.created = out->created();
    return r;
  }

  std::unique_ptr<oci::BlobWriter> out;
  LayerOptions options;
  std::unique_ptr<Compressor> compressor;
  archive* ar = nullptr;
  Sha256 tar_sha;
  uint64_t tar_bytes = 0;
  std::vector<char> buf;
  Status status;
  std::unique_ptr<IndexBuilder> index;  // v2: set by the disk file
  size_t first_member = 0;              // v2: the compressor member of its first chunk
};

LayerWriter::LayerWriter(std::unique_ptr<oci::BlobWriter> out, LayerOptions options)
    : impl_(std::make_unique<Impl>(std::move(out), options)) {}

LayerWriter::~LayerWriter() = default;

Status LayerWriter::AddDirectory(std::string_view name, EntryOwner owner) {
  if (!impl_->status.ok()) return impl_->status;
  return impl_->Sticky(impl_->AddDirectory(name, owner));
}

Status LayerWriter::AddFile(std::string_view name, const std::string& src_path, EntryOwner owner,
                            bool sparse, const std::function<void(uint64_t)>& on_bytes) {
  if (!impl_->status.ok()) return impl_->status;
  return impl_->Sticky(impl_->AddFile(name, src_path, owner, sparse, on_bytes));
}

StatusOr<LayerResult> LayerWriter::Finish() {
  if (!impl_->status.ok()) return impl_->status;
  StatusOr<LayerResult> r = impl_->Finish();
  if (!r.ok()) return impl_->Sticky(r.status());
  impl_->status = Internal("layer writer: Finish() was already called");
  return r;
}

}  // namespace regdisk::layer
