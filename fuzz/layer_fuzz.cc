// libFuzzer target: layer extraction (layer/disk_extractor.h) from an
// in-memory blob, as a node pulls it from a registry it does not control.
//
// Input: one mode byte, then the payload.
//   bits 0-1  codec: 0 none (tar), 1 gzip, 2 zstd (3: none, with the gzip
//             media type, so the magic check must refuse it)
//   bit 2     the payload is a tar: the harness compresses it with the codec
//             first (so mutations reach the tar reader); otherwise the
//             payload is the blob as is (so they reach the decompressors)
//   bit 3     add the blob twice, as two layers (whiteouts, overrides)
//   bits 4-7  the size of the reads the blob answers (1 byte .. 64 KiB)
//
// Checked: AddLayer and Take return a status (never crash, hang or throw);
// a refusal is a non-empty single line without control characters; after one, nothing can be taken; a
// taken disk is a regular file no larger than the limit with a clean name;
// nothing is left in the work directory (a fresh one per input, removed
// after it) once the extractor and the taken file are gone. The descriptor
// and diff_id are the real digests (computed here), so well-formed layers get
// through verification and reach Take().
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "layer/decompressor.h"
#include "layer/disk_extractor.h"
#include "oci/media_types.h"
#include "util/fs.h"

namespace {

using namespace regdisk;

constexpr uint64_t kLimit = 16 << 20;  // bytes per file and per layer

// The scratch directory of the input being run (empty between inputs). It is
// made for each input and removed with everything in it after it, so no way
// the process ends between inputs leaves one behind: libFuzzer's -runs and
// -max_total_time end with exit() and the replay main() just returns, and
// nothing would remove a directory made once for the whole process. A finding
// of this harness removes it before aborting; only a sanitizer report, a
// timeout or a signal mid-input (libFuzzer then _Exit()s) still leaves one.
std::string g_scratch;

void Check(bool ok) {
  if (ok) return;
  if (!g_scratch.empty()) (void)RemoveAll(g_scratch);
  std::abort();
}

void CheckError(const Status& st) {
  // One line, with nothing a terminal would act on: outside data is escaped.
  Check(!st.ok() && !st.message().empty() && st.message() == OneLine(st.message()));
}

// A blob served from memory in reads of at most `step` bytes.
class MemoryBlob : public oci::BlobReader {
 public:
  MemoryBlob(std::string_view bytes, size_t step) : bytes_(bytes), step_(step) {}
  StatusOr<size_t> Read(void* buf, size_t len) override {
    size_t n = std::min({len, step_, bytes_.size() - pos_});
    std::memcpy(buf, bytes_.data() + pos_, n);
    pos_ += n;
    return n;
  }
  uint64_t size() const override { return bytes_.size(); }

 private:
  std::string_view bytes_;
  size_t step_;
  size_t pos_ = 0;
};

std::string Gzip(std::string_view in) {
  z_stream z{};
  deflateInit2(&z, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, in.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string Zstd(std::string_view in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 1);
  Check(!ZSTD_isError(n));
  out.resize(n);
  return out;
}

// The sha256 of what the blob decompresses to (the diff_id), or of nothing
// when it does not decompress within the limit.
oci::Digest DiffId(std::string_view blob, layer::Codec codec) {
  auto d = layer::Decompressor::Create(codec);
  std::string out;
  std::string buf(64 << 10, '\0');
  const char* in = blob.data();
  size_t in_len = blob.size();
  for (int idle = 0; idle < 2 && out.size() <= kLimit;) {
    auto n = d->Decompress(&in, &in_len, buf.data(), buf.size());
    if (!n.ok()) return oci::Digest::Of("");
    out.append(buf.data(), *n);
    idle = *n == 0 ? idle + 1 : 0;
  }
  return oci::Digest::Of(out);
}

// REGDISK_FUZZ_VERBOSE=1: say what happened to each input (for seeds).
bool Verbose() {
  static const bool on = std::getenv("REGDISK_FUZZ_VERBOSE") != nullptr;
  return on;
}

// Makes g_scratch (in /dev/shm when it can, a tmpfs: no disk writes) for one
// input and removes it, with everything in it, when destroyed.
class Scratch {
 public:
  Scratch() {
    const char* parent = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    std::string t = std::string(parent) + "/regdisk-layer-fuzz-XXXXXX";
    Check(::mkdtemp(t.data()) != nullptr);
    g_scratch = t;
  }
  ~Scratch() {
    (void)RemoveAll(g_scratch);
    g_scratch.clear();
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  const std::string& path() const { return g_scratch; }
};

// A relative path without empty, "." or ".." components.
bool SafeName(const std::string& name) {
  if (name.empty() || name.front() == '/') return false;
  size_t pos = 0;
  while (pos <= name.size()) {
    size_t slash = std::min(name.find('/', pos), name.size());
    std::string_view part(name.data() + pos, slash - pos);
    if (part.empty() || part == "." || part == "..") return false;
    pos = slash + 1;
  }
  return true;
}

bool DirIsEmpty(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return false;
  bool empty = true;
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) empty = false;
  }
  ::closedir(d);
  return empty;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  uint8_t mode = data[0];
  std::string_view payload(reinterpret_cast<const char*>(data + 1), size - 1);
  static const char* const kTypes[4] = {oci::media::kOciLayerTar, oci::media::kOciLayerGzip,
                                        oci::media::kOciLayerZstd, oci::media::kOciLayerGzip};
  static const layer::Codec kCodecs[4] = {layer::Codec::kNone, layer::Codec::kGzip, layer::Codec::kZstd,
                                          layer::Codec::kGzip};
  int c = mode & 3;
  std::string blob(payload);
  if (mode & 4) {
    if (c == 1) blob = Gzip(payload);
    if (c == 2) blob = Zstd(payload);
  }
  size_t step = size_t{1} << (((mode >> 4) & 15) + 1);  // 2 .. 64 KiB
  if (((mode >> 4) & 15) == 15) step = 1;

  oci::Descriptor desc{kTypes[c], oci::Digest::Of(blob), blob.size(), {}, {}};
  oci::Digest diff_id = DiffId(blob, kCodecs[c]);
  Scratch scratch;
  const std::string& work = scratch.path();
  {
    layer::DiskExtractor ex(work, {.max_disk_size = kLimit, .max_layer_bytes = kLimit});
    bool ok = true;
    for (int i = 0; i < ((mode & 8) ? 2 : 1) && ok; ++i) {
      MemoryBlob reader(blob, step);
      Status s = ex.AddLayer(reader, desc, diff_id);
      if (Verbose()) std::fprintf(stderr, "layer %d: %s\n", i, s.ok() ? "ok" : s.message().c_str());
      if (!s.ok()) {
        CheckError(s);
        ok = false;
      }
    }
    if (!ok) Check(!ex.Take("").ok());  // nothing of a failed layer may be taken
    if (ok) {
      auto taken = ex.Take("");
      if (Verbose()) {
        std::fprintf(stderr, "take: %s\n", taken.ok() ? taken->name.c_str() : taken.status().message().c_str());
      }
      if (taken.ok()) {
        struct stat st;
        Check(::lstat(taken->file.c_str(), &st) == 0 && S_ISREG(st.st_mode));
        Check(static_cast<uint64_t>(st.st_size) <= kLimit);
        Check(SafeName(taken->name));
        ::unlink(taken->file.c_str());
      } else {
        CheckError(taken.status());
      }
    }
  }
  Check(DirIsEmpty(work));
  return 0;
}
