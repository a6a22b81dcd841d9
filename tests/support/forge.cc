#include "forge.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <zlib.h>
#include <zstd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "oci/media_types.h"
#include "util/sha256.h"

namespace regdisk::forge {
namespace {

la_ssize_t Append(archive*, void* ctx, const void* buf, size_t len) {
  static_cast<std::string*>(ctx)->append(static_cast<const char*>(buf), len);
  return static_cast<la_ssize_t>(len);
}

using ArchivePtr = std::unique_ptr<archive, int (*)(archive*)>;

ArchivePtr NewWriter(std::string* out) {
  ArchivePtr a(archive_write_new(), archive_write_free);
  archive_write_set_format_pax_restricted(a.get());
  archive_write_set_bytes_per_block(a.get(), 512);
  archive_write_open(a.get(), out, nullptr, Append, nullptr);
  return a;
}

}  // namespace

std::string MakeTar(const std::vector<TarEntry>& entries) {
  std::string out;
  {
    ArchivePtr a = NewWriter(&out);
    for (const auto& e : entries) {
      archive_entry* ae = archive_entry_new();
      archive_entry_set_pathname(ae, e.name.c_str());
      archive_entry_set_perm(ae, e.mode);
      archive_entry_set_uid(ae, e.uid);
      archive_entry_set_gid(ae, e.gid);
      archive_entry_set_mtime(ae, 0, 0);
      switch (e.type) {
        case TarEntry::Type::kFile:
          archive_entry_set_filetype(ae, AE_IFREG);
          archive_entry_set_size(ae, static_cast<la_int64_t>(e.data.size()));
          break;
        case TarEntry::Type::kDir: archive_entry_set_filetype(ae, AE_IFDIR); break;
        case TarEntry::Type::kSymlink:
          archive_entry_set_filetype(ae, AE_IFLNK);
          archive_entry_set_symlink(ae, e.link.c_str());
          break;
        case TarEntry::Type::kHardlink:
          archive_entry_set_filetype(ae, AE_IFREG);
          archive_entry_set_hardlink(ae, e.link.c_str());
          break;
        case TarEntry::Type::kCharDevice:
          archive_entry_set_filetype(ae, AE_IFCHR);
          archive_entry_set_rdev(ae, makedev(1, 3));
          break;
        case TarEntry::Type::kFifo: archive_entry_set_filetype(ae, AE_IFIFO); break;
      }
      if (archive_write_header(a.get(), ae) != ARCHIVE_OK) throw std::runtime_error(archive_error_string(a.get()));
      if (e.type == TarEntry::Type::kFile && !e.data.empty()) {
        archive_write_data(a.get(), e.data.data(), e.data.size());
      }
      archive_entry_free(ae);
    }
    archive_write_close(a.get());
  }
  return out;
}

std::string MakeSparseTar(const std::string& name, uint64_t size, uint64_t offset, const std::string& data) {
  std::string out;
  {
    ArchivePtr a = NewWriter(&out);
    archive_entry* ae = archive_entry_new();
    archive_entry_set_pathname(ae, name.c_str());
    archive_entry_set_filetype(ae, AE_IFREG);
    archive_entry_set_perm(ae, 0440);
    archive_entry_set_uid(ae, 107);
    archive_entry_set_gid(ae, 107);
    archive_entry_set_size(ae, static_cast<la_int64_t>(size));
    archive_entry_sparse_add_entry(ae, static_cast<la_int64_t>(offset), static_cast<la_int64_t>(data.size()));
    archive_write_header(a.get(), ae);
    // The pax writer expects the whole stream, holes included, and drops
    // the hole bytes.
    std::string zeros(1 << 20, '\0');
    for (uint64_t pos = 0; pos < size;) {
      if (pos == offset) {
        archive_write_data(a.get(), data.data(), data.size());
        pos += data.size();
        continue;
      }
      uint64_t end = pos < offset ? offset : size;
      size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), end - pos));
      archive_write_data(a.get(), zeros.data(), n);
      pos += n;
    }
    archive_entry_free(ae);
    archive_write_close(a.get());
  }
  return out;
}

std::string GzipBytes(const std::string& data) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string ZstdBytes(const std::string& data) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  out.resize(ZSTD_compress(out.data(), out.size(), data.data(), data.size(), 3));
  return out;
}

namespace {

// A ustar header for a regular file, by hand: libarchive's writers pad the
// data themselves (in memory) and insist on UTF-8 names.
std::string UstarHeader(const std::string& name, uint64_t size) {
  std::string header(512, '\0');
  auto field = [&](size_t off, const std::string& v) { std::memcpy(&header[off], v.data(), v.size()); };
  auto octal = [](uint64_t v, int digits) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%0*llo", digits, static_cast<unsigned long long>(v));
    return std::string(buf);
  };
  field(0, name.substr(0, 99));
  field(100, "0000644");
  field(108, "0000000");
  field(116, "0000000");
  field(124, octal(size, 11));
  field(136, octal(0, 11));
  field(148, "        ");
  header[156] = '0';
  field(257, std::string("ustar\0" "00", 8));
  unsigned sum = 0;
  for (unsigned char c : header) sum += c;
  field(148, octal(sum, 6) + std::string("\0 ", 2));
  return header;
}

}  // namespace

std::string UstarTar(const std::string& name, const std::string& data) {
  return UstarHeader(name, data.size()) + data + std::string((512 - data.size() % 512) % 512 + 1024, '\0');
}

Compressed ZstdZeroFileTar(const std::string& name, uint64_t size) {
  const std::string header = UstarHeader(name, size);
  Compressed out;
  Sha256 diff;
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> z(ZSTD_createCCtx(), ZSTD_freeCCtx);
  std::string buf(ZSTD_CStreamOutSize(), '\0');
  auto feed = [&](const char* p, size_t n, ZSTD_EndDirective end) {
    diff.Update(p, n);
    ZSTD_inBuffer in{p, n, 0};
    for (bool done = false; !done;) {
      ZSTD_outBuffer o{buf.data(), buf.size(), 0};
      size_t left = ZSTD_compressStream2(z.get(), &o, &in, end);
      out.blob.append(buf.data(), o.pos);
      done = end == ZSTD_e_end ? left == 0 : in.pos == in.size;
    }
  };
  feed(header.data(), header.size(), ZSTD_e_continue);
  const std::string zeros(1 << 20, '\0');
  for (uint64_t left = size; left > 0;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(left, zeros.size()));
    feed(zeros.data(), n, ZSTD_e_continue);
    left -= n;
  }
  // Padding to a block, then the two end-of-archive blocks.
  feed(zeros.data(), (512 - size % 512) % 512 + 1024, ZSTD_e_end);
  out.diff_id = oci::Digest::FromHex(diff.FinishHex());
  return out;
}

oci::Annotations DiskAnnotations(const std::string& name, const std::string& format, uint64_t virtual_size) {
  return {{oci::annotation::kDiskPath, "/disk/" + name},
          {oci::annotation::kDiskFormat, format},
          {oci::annotation::kDiskVirtualSize, std::to_string(virtual_size)}};
}

StatusOr<oci::RawManifest> PutImage(oci::Store& store, const std::vector<Layer>& layers, const std::string& tag,
                                    const oci::Annotations& manifest_annotations) {
  oci::Manifest m;
  m.media_type = oci::media::kOciManifest;
  m.annotations = manifest_annotations;
  oci::ImageConfig config;
  config.architecture = "amd64";
  config.os = "linux";
  for (const auto& l : layers) {
    std::string blob;
    std::string type;
    if (l.compressed) {
      blob = l.compressed->blob;
      type = oci::media::kOciLayerZstd;
    } else switch (l.compression) {
      case Compression::kNone: blob = l.tar; type = oci::media::kOciLayerTar; break;
      case Compression::kGzip: blob = GzipBytes(l.tar); type = oci::media::kOciLayerGzip; break;
      case Compression::kZstd: blob = ZstdBytes(l.tar); type = oci::media::kOciLayerZstd; break;
    }
    ASSIGN_OR_RETURN(oci::Descriptor d, oci::WriteBlob(store, blob, l.media_type.empty() ? type : l.media_type));
    d.annotations = l.annotations;
    m.layers.push_back(d);
    config.diff_ids.push_back(l.diff_id ? *l.diff_id : l.compressed ? l.compressed->diff_id : oci::Digest::Of(l.tar));
  }
  ASSIGN_OR_RETURN(m.config, oci::WriteBlob(store, oci::EncodeImageConfig(config), oci::media::kOciConfig));
  return oci::PutManifest(store, m, tag);
}

}  // namespace regdisk::forge
