#include "layer/head_reader.h"

#include <archive.h>
#include <archive_entry.h>

#include <memory>

#include "layer/decompressor.h"

namespace regdisk::layer {
namespace {

// The head's uncompressed bytes, at most `limit`, ending at a member's end.
StatusOr<std::string> DecodeHead(Codec codec, std::string_view member, uint64_t limit) {
  if (codec == Codec::kNone) return std::string(member);
  auto d = Decompressor::Create(codec);
  std::string out;
  const char* in = member.data();
  size_t in_len = member.size();
  char buf[64 << 10];
  while (in_len > 0) {
    const size_t before = in_len;
    ASSIGN_OR_RETURN(size_t n, d->Decompress(&in, &in_len, buf, sizeof buf));
    out.append(buf, n);
    if (out.size() > limit) return Corrupt("v2 head member: more than " + std::to_string(limit) + " bytes");
    if (n == 0 && in_len == before) return Corrupt("v2 head member: the decoder made no progress");
  }
  // Output the decoder still holds once all input is in.
  for (;;) {
    ASSIGN_OR_RETURN(size_t n, d->Decompress(&in, &in_len, buf, sizeof buf));
    if (n == 0) break;
    out.append(buf, n);
    if (out.size() > limit) return Corrupt("v2 head member: more than " + std::to_string(limit) + " bytes");
  }
  if (!d->AtEnd()) return Corrupt("v2 head member: truncated");
  return out;
}

}  // namespace

uint64_t MaxHeadBytes(const DiskIndex& index) {
  return kHeadFixedBytes + kSparseMapBytesPerEntry * index.entries.size();
}

StatusOr<HeadEntry> ReadHead(const BlobReadAt& read, const DiskIndex& index) {
  const IndexEntry* first = nullptr;
  for (const IndexEntry& e : index.entries) {
    if (!e.zero()) {
      first = &e;
      break;
    }
  }
  if (first == nullptr) return Unsupported("v2 layer: the disk has no data chunk, so no head of known length");
  const uint64_t limit = MaxHeadBytes(index);
  // The head is compressed like every member; its compressed form is
  // bounded as a member of `limit` bytes would be.
  if (first->blob_offset == 0 || first->blob_offset > MaxMemberBytes(limit)) {
    return Corrupt("v2 layer: the head member's length is out of bounds");
  }
  std::string member(first->blob_offset, '\0');
  RETURN_IF_ERROR(read(0, member.data(), member.size()).Annotate("reading the v2 head member"));
  ASSIGN_OR_RETURN(std::string head, DecodeHead(index.codec, member, limit));

  std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
  if (a == nullptr) return Internal("libarchive: cannot create a reader");
  archive_read_support_format_tar(a.get());
  auto fail = [&](const std::string& what) {
    const char* e = archive_error_string(a.get());
    return Corrupt("v2 head member: " + what + ": " + OneLine(e != nullptr ? e : "tar error"));
  };
  if (archive_read_open_memory(a.get(), head.data(), head.size()) != ARCHIVE_OK) return fail("opening");
  // The disk entry, after at most the directory entries.
  for (int count = 0; count < 4; ++count) {
    archive_entry* e = nullptr;
    if (archive_read_next_header(a.get(), &e) != ARCHIVE_OK) return fail("reading a tar header");
    const char* raw = archive_entry_pathname(e);
    const std::string name = raw != nullptr ? raw : "";
    const auto type = archive_entry_filetype(e);
    if (type == AE_IFDIR && (name == "disk" || name == "disk/")) continue;
    if (type != AE_IFREG || !name.starts_with("disk/") || name.size() == 5 ||
        name.find('/', 5) != std::string::npos) {
      return Corrupt("v2 head member: unexpected entry " + Quote(name));
    }
    const int64_t size = archive_entry_size(e);
    if (size < 0 || static_cast<uint64_t>(size) != index.disk_size) {
      return Corrupt("v2 head member: " + Quote(name) + " is " + std::to_string(size) + " bytes, the index says " +
                     std::to_string(index.disk_size));
    }
    return HeadEntry{name.substr(5), archive_entry_uid(e), archive_entry_gid(e),
                     static_cast<uint32_t>(archive_entry_perm(e)), static_cast<uint64_t>(size)};
  }
  return Corrupt("v2 head member: no disk file entry");
}

}  // namespace regdisk::layer
