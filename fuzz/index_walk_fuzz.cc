// Fuzzes the index walks over hostile manifests: oci::CopyImage (one fetch
// per distinct digest, kMaxManifestsPerOperation, kMaxIndexDepth) and
// oci::SelectManifest (only the chosen path), between in-memory stores.
//
// Input: JSON documents separated by "\n--\n". Document 0 is tagged "t".
// "#N" (one digit) inside a document becomes the digest of document N,
// N > the document's own number, so documents can name each other the way
// indexes and manifests do (sha256 cannot be fuzzed into place). Every
// document is both a manifest and a blob of the store.
//
// Whatever the input: no crash, and the walks stay within their bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "oci/copy.h"
#include "oci/store.h"

namespace {

using namespace regdisk;

class MemoryStore : public oci::Store {
 public:
  std::map<oci::Digest, std::string> blobs;
  std::map<oci::Digest, oci::RawManifest> manifests;
  std::map<std::string, oci::Digest> tags;
  oci::StoreId id() const override { return {"memory", ""}; }
  int manifest_reads = 0;

  StatusOr<bool> HasBlob(const oci::Digest& d) override { return blobs.count(d) > 0; }
  StatusOr<std::unique_ptr<oci::BlobReader>> OpenBlob(const oci::Digest& d) override {
    auto it = blobs.find(d);
    if (it == blobs.end()) return NotFound("no blob");
    struct Reader : oci::BlobReader {
      std::string_view data;
      StatusOr<size_t> Read(void* buf, size_t len) override {
        size_t n = std::min(len, data.size());
        std::copy(data.begin(), data.begin() + n, static_cast<char*>(buf));
        data.remove_prefix(n);
        return n;
      }
      uint64_t size() const override { return data.size(); }
    };
    auto r = std::make_unique<Reader>();
    r->data = it->second;
    return std::unique_ptr<oci::BlobReader>(std::move(r));
  }
  StatusOr<std::unique_ptr<oci::BlobWriter>> CreateBlob() override {
    struct Writer : oci::BlobWriter {
      MemoryStore* store;
      std::string data;
      Status Write(const void* p, size_t len) override {
        data.append(static_cast<const char*>(p), len);
        return OkStatus();
      }
      StatusOr<oci::Descriptor> Commit(const std::string& type, const std::optional<oci::Digest>& want) override {
        oci::Digest got = oci::Digest::Of(data);
        if (want && *want != got) return Corrupt("digest mismatch");
        store->blobs[got] = data;
        return oci::Descriptor{.media_type = type, .digest = got, .size = data.size()};
      }
      bool created() const override { return true; }
    };
    auto w = std::make_unique<Writer>();
    w->store = this;
    return std::unique_ptr<oci::BlobWriter>(std::move(w));
  }
  Status DeleteBlob(const oci::Digest& d) override { return blobs.erase(d) ? OkStatus() : NotFound("no blob"); }
  StatusOr<oci::RawManifest> GetManifest(const std::string& ref) override {
    ++manifest_reads;
    auto tag = tags.find(ref);
    auto digest = tag != tags.end() ? StatusOr<oci::Digest>(tag->second) : oci::Digest::Parse(ref);
    if (!digest.ok()) return digest.status();
    auto it = manifests.find(*digest);
    if (it == manifests.end()) return NotFound("no manifest");
    return it->second;
  }
  Status PutManifest(const oci::RawManifest& m, const std::string& tag) override {
    manifests[m.descriptor.digest] = m;
    if (!tag.empty()) tags[tag] = m.descriptor.digest;
    return OkStatus();
  }
  StatusOr<std::vector<std::pair<std::string, oci::Descriptor>>> ListTags() override {
    return std::vector<std::pair<std::string, oci::Descriptor>>();
  }
};

// The documents of the input, with "#N" resolved (see the top).
std::vector<std::string> Documents(std::string_view input) {
  std::vector<std::string> docs;
  const std::string_view sep = "\n--\n";
  for (size_t start = 0; start <= input.size() && docs.size() < 64;) {
    size_t end = input.find(sep, start);
    if (end == std::string_view::npos) end = input.size();
    docs.emplace_back(input.substr(start, end - start));
    start = end + sep.size();
  }
  std::vector<std::string> digests(docs.size());
  for (size_t i = docs.size(); i-- > 0;) {
    std::string& d = docs[i];
    for (size_t p = d.find('#'); p != std::string::npos && p + 1 < d.size(); p = d.find('#', p + 1)) {
      size_t n = static_cast<size_t>(d[p + 1] - '0');
      if (d[p + 1] < '0' || d[p + 1] > '9' || n <= i || n >= docs.size()) continue;
      d.replace(p, 2, digests[n]);
    }
    digests[i] = oci::Digest::Of(d).str();
  }
  return docs;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> docs = Documents(std::string_view(reinterpret_cast<const char*>(data), size));
  MemoryStore src;
  for (size_t i = 0; i < docs.size(); ++i) {
    auto type = oci::SniffMediaType(docs[i]);
    oci::RawManifest m{.descriptor = {.media_type = type.ok() ? *type : "application/octet-stream",
                                      .digest = oci::Digest::Of(docs[i]), .size = docs[i].size()},
                       .bytes = docs[i]};
    src.blobs[m.descriptor.digest] = docs[i];
    (void)src.PutManifest(m, i == 0 ? "t" : "");
  }
  MemoryStore dst;
  (void)oci::CopyImage(src, "t", dst, "t");
  // The root by tag, then each distinct digest at most once, up to the cap.
  if (src.manifest_reads > static_cast<int>(oci::kMaxManifestsPerOperation) + 1) std::abort();

  auto root = src.GetManifest("t");
  if (!root.ok()) return 0;
  src.manifest_reads = 0;
  auto picked = oci::SelectManifest(src, *root, oci::Platform{.architecture = "amd64", .os = "linux"});
  if (src.manifest_reads > oci::kMaxIndexDepth) std::abort();
  if (picked.ok() && !oci::IsManifestType(picked->descriptor.media_type)) std::abort();
  return 0;
}
