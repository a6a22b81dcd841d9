#include "layer/index_verifier.h"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "layer/chunk_reader.h"
#include "util/sha256.h"

namespace regdisk::layer {
namespace {

constexpr size_t kReadSize = 1 << 20;  // blob bytes read (and decompressed) at a time
// A v2 layer holds disk/, .regdisk/, the disk and the index; a few more
// entries are tolerated, thousands (a tar of empty headers) are not.
constexpr int kMaxEntries = 16;

// The independently decodable members of the blob: every data entry's and
// the index's, in blob order; each is checked once all its bytes went by.
class MemberTee {
 public:
  MemberTee(const DiskIndex& index, const IndexAnchor& anchor, const VerifyHooks& hooks)
      : index_(index), anchor_(anchor), hooks_(hooks) {
    for (const IndexEntry& e : index.entries) {
      if (!e.zero()) spans_.push_back({e.blob_offset, e.blob_length, &e});
    }
    spans_.push_back({anchor.offset, anchor.length, nullptr});
  }

  Status Feed(const char* p, size_t n) {
    while (n > 0 && next_ < spans_.size()) {
      const Span& s = spans_[next_];
      size_t take;
      if (pos_ < s.offset) {
        take = static_cast<size_t>(std::min<uint64_t>(n, s.offset - pos_));
      } else {
        take = static_cast<size_t>(std::min<uint64_t>(n, s.offset + s.length - pos_));
        buf_.append(p, take);
      }
      p += take;
      n -= take;
      pos_ += take;
      if (pos_ == s.offset + s.length) {
        RETURN_IF_ERROR(Check(s));
        buf_.clear();
        ++next_;
      }
    }
    pos_ += n;
    return OkStatus();
  }

  Status Finish() const {
    if (next_ < spans_.size()) return Corrupt("v2 layer: the blob ends before the member at offset " + std::to_string(spans_[next_].offset));
    return OkStatus();
  }

 private:
  struct Span {
    uint64_t offset, length;
    const IndexEntry* entry;  // null: the index's member
  };

  Status Check(const Span& s) const {
    if (s.entry != nullptr) {
      auto bytes = DecodeMember(index_.codec, buf_, s.entry->length);
      if (!bytes.ok()) return bytes.status().Annotate("chunk at disk offset " + std::to_string(s.entry->disk_offset));
      RETURN_IF_ERROR(CheckChunk(*s.entry, *bytes));
      return hooks_.on_chunk ? hooks_.on_chunk(*s.entry, *bytes) : OkStatus();
    }
    auto bytes = DecodeMember(index_.codec, buf_, anchor_.uncompressed_length);
    if (!bytes.ok()) return bytes.status().Annotate("the index's member");
    if (Sha256::HexOf(*bytes) != anchor_.digest.hex()) return Corrupt("v2 layer: the index's member does not hold the anchored index");
    return OkStatus();
  }

  const DiskIndex& index_;
  const IndexAnchor& anchor_;
  const VerifyHooks& hooks_;
  std::vector<Span> spans_;
  size_t next_ = 0;
  uint64_t pos_ = 0;
  std::string buf_;
};

// Compares the disk file as the tar shows it with the index, range by range.
class DiskCompare {
 public:
  explicit DiskCompare(const DiskIndex& index) : index_(index) {}

  // Data at `offset` (increasing); what lies between is a hole (zeros).
  Status Feed(uint64_t offset, const char* p, size_t n) {
    if (offset < pos_) return Corrupt("v2 layer: the disk file's data blocks are out of order");
    RETURN_IF_ERROR(Advance(nullptr, offset - pos_));
    return Advance(p, n);
  }

  Status Finish() {
    RETURN_IF_ERROR(Advance(nullptr, index_.disk_size - pos_));
    if (i_ != index_.entries.size()) return Corrupt("v2 layer: the disk file is shorter than the index");
    return OkStatus();
  }

 private:
  // `n` bytes of the disk from `p`, or zeros when `p` is null.
  Status Advance(const char* p, uint64_t n) {
    static const char kZeros[64 << 10] = {};
    while (n > 0) {
      if (i_ >= index_.entries.size()) return Corrupt("v2 layer: the disk file is longer than the index");
      const IndexEntry& e = index_.entries[i_];
      const uint64_t take = std::min<uint64_t>(n, e.disk_offset + e.length - pos_);
      if (e.zero()) {
        if (p != nullptr && std::any_of(p, p + take, [](char c) { return c != 0; })) {
          return Corrupt("v2 layer: the tar has data in the index's hole at disk offset " + std::to_string(e.disk_offset));
        }
      } else {
        if (sha_ == nullptr) sha_ = std::make_unique<Sha256>();
        if (p != nullptr) {
          sha_->Update(p, take);
        } else {
          for (uint64_t left = take; left > 0;) {
            const size_t k = static_cast<size_t>(std::min<uint64_t>(left, sizeof kZeros));
            sha_->Update(kZeros, k);
            left -= k;
          }
        }
      }
      pos_ += take;
      n -= take;
      if (p != nullptr) p += take;
      if (pos_ == e.disk_offset + e.length) {
        if (sha_ != nullptr && sha_->FinishHex() != ShaHex(e.sha256)) {
          return Corrupt("v2 layer: the tar and the index disagree on the chunk at disk offset " + std::to_string(e.disk_offset));
        }
        sha_.reset();
        ++i_;
      }
    }
    return OkStatus();
  }

  const DiskIndex& index_;
  size_t i_ = 0;
  uint64_t pos_ = 0;
  std::unique_ptr<Sha256> sha_;
};

// The blob as libarchive reads it: decompressed, every compressed byte
// also going through the member checks.
struct Stream {
  oci::BlobReader& blob;
  MemberTee& tee;
  std::unique_ptr<Decompressor> dec;
  std::vector<char> in = std::vector<char>(kReadSize), out = std::vector<char>(kReadSize);
  const char* in_pos = nullptr;
  size_t in_len = 0;
  uint64_t read = 0;
  Sha256 tar_sha;  // of every decompressed byte (the diff_id)
  bool eof = false;
  Status error;

  // Reads and checks the next piece of the blob; 0 at its end.
  StatusOr<size_t> Pull() {
    if (eof) return size_t{0};
    ASSIGN_OR_RETURN(size_t n, blob.Read(in.data(), in.size()));
    if (n == 0 || read + n > blob.size()) {
      eof = true;
      if (read + n > blob.size()) return Corrupt("v2 layer: the blob is longer than its size");
      return size_t{0};
    }
    read += n;
    RETURN_IF_ERROR(tee.Feed(in.data(), n));
    in_pos = in.data();
    in_len = n;
    return n;
  }

  StatusOr<size_t> Next() {
    for (;;) {
      if (in_len == 0) {
        ASSIGN_OR_RETURN(size_t n, Pull());
        if (n == 0) {
          if (!dec->AtEnd()) return Corrupt("v2 layer: the compressed stream is truncated");
          return size_t{0};
        }
      }
      ASSIGN_OR_RETURN(size_t got, dec->Decompress(&in_pos, &in_len, out.data(), out.size()));
      tar_sha.Update(out.data(), got);
      if (got > 0) return got;
    }
  }

  static la_ssize_t Callback(archive* a, void* ctx, const void** buf) {
    auto* s = static_cast<Stream*>(ctx);
    auto n = s->Next();
    if (!n.ok()) {
      s->error = n.status();
      archive_set_error(a, EIO, "%s", n.status().message().c_str());
      return -1;
    }
    *buf = s->out.data();
    return static_cast<la_ssize_t>(*n);
  }
};

bool IsDirName(std::string_view n) { return n == "disk" || n == "disk/" || n == ".regdisk" || n == ".regdisk/"; }

bool IsDiskName(std::string_view n) {
  return n.starts_with("disk/") && n.size() > 5 && n.find('/', 5) == std::string_view::npos;
}

}  // namespace

Status VerifyLayer(oci::BlobReader& blob, const IndexAnchor& anchor, const DiskIndex& index,
                   const VerifyHooks& hooks) {
  MemberTee tee(index, anchor, hooks);
  Stream stream{blob, tee, Decompressor::Create(index.codec)};
  std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
  if (a == nullptr) return Internal("libarchive: cannot create a reader");
  archive_read_support_format_tar(a.get());
  auto fail = [&](const std::string& what) -> Status {
    if (!stream.error.ok()) return stream.error;
    const char* e = archive_error_string(a.get());
    // libarchive's message may quote names from the tar.
    return Corrupt("v2 layer: " + what + ": " + OneLine(e != nullptr ? e : "tar error"));
  };
  if (archive_read_open(a.get(), &stream, nullptr, &Stream::Callback, nullptr) != ARCHIVE_OK) {
    return fail("opening the tar stream");
  }
  bool saw_disk = false, saw_index = false;
  for (int count = 0;; ++count) {
    archive_entry* e = nullptr;
    const int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK) return fail("reading a tar header");
    if (count >= kMaxEntries) return Corrupt("v2 layer: more than " + std::to_string(kMaxEntries) + " tar entries");
    const char* raw = archive_entry_pathname(e);
    const std::string name = raw != nullptr ? raw : "";
    const auto type = archive_entry_filetype(e);
    if (saw_index) return Corrupt("v2 layer: entry " + Quote(name) + " after the index");
    if (type == AE_IFDIR && IsDirName(name)) continue;
    if (type != AE_IFREG) return Corrupt("v2 layer: unexpected entry " + Quote(name));
    const int64_t size = archive_entry_size(e);
    if (name == kIndexEntryName) {
      if (!saw_disk) return Corrupt("v2 layer: the index comes before the disk file");
      if (size < 0 || static_cast<uint64_t>(size) != anchor.uncompressed_length) {
        return Corrupt("v2 layer: the index entry's size is not the anchored one");
      }
      saw_index = true;
      Sha256 sha;
      const void* buf;
      size_t len;
      la_int64_t off;
      int rr;
      while ((rr = archive_read_data_block(a.get(), &buf, &len, &off)) == ARCHIVE_OK) sha.Update(buf, len);
      if (rr != ARCHIVE_EOF) return fail("reading the index entry");
      if (sha.FinishHex() != anchor.digest.hex()) return Corrupt("v2 layer: the tar's index is not the anchored index");
      continue;
    }
    if (!IsDiskName(name) || saw_disk) return Corrupt("v2 layer: unexpected file " + Quote(name));
    saw_disk = true;
    if (size < 0 || static_cast<uint64_t>(size) != index.disk_size) {
      return Corrupt("v2 layer: " + Quote(name) + " is " + std::to_string(size) + " bytes, the index says " +
                     std::to_string(index.disk_size));
    }
    DiskCompare compare(index);
    for (;;) {
      const void* buf;
      size_t len;
      la_int64_t off;
      const int rr = archive_read_data_block(a.get(), &buf, &len, &off);
      if (rr == ARCHIVE_EOF) break;
      if (rr != ARCHIVE_OK) return fail("reading " + Quote(name));
      if (off < 0 || static_cast<uint64_t>(off) + len > index.disk_size) return Corrupt("v2 layer: data past the disk's end");
      RETURN_IF_ERROR(compare.Feed(static_cast<uint64_t>(off), static_cast<const char*>(buf), len));
    }
    RETURN_IF_ERROR(compare.Finish());
  }
  if (!saw_index) return Corrupt("v2 layer: no index entry in the tar");
  // The rest of the blob (the end-of-archive blocks) still goes through
  // the member checks and into the diff_id.
  for (;;) {
    ASSIGN_OR_RETURN(size_t n, stream.Next());
    if (n == 0) break;
  }
  if (stream.read != blob.size()) return Corrupt("v2 layer: the blob is shorter than its size");
  RETURN_IF_ERROR(tee.Finish());
  if (hooks.diff_id && stream.tar_sha.FinishHex() != hooks.diff_id->hex()) {
    return Corrupt("v2 layer: the uncompressed layer does not match its diff_id " + hooks.diff_id->str());
  }
  return OkStatus();
}

}  // namespace regdisk::layer
