// Test tooling for the chunk store's tests (src/lazy/lazy_test.cc,
// peer_store_test.cc, tests/integration/lazy_nbd_test.cc): v2 images of a
// small sparse disk in OCI layouts, their lazy entries, a store that counts
// what is read from it, and peers backed by another node's entry.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <array>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "layout/layout.h"
#include "lazy/chunk_store.h"
#include "lazy/peer_chunks.h"
#include "lazy_entry.h"
#include "util/fs.h"

namespace regdisk::lazy {

constexpr uint32_t kChunk = 64 << 10;

// A layout that counts what is read from it.
class CountingStore : public oci::Store {
 public:
  static std::unique_ptr<CountingStore> Open(const std::string& root) {
    auto l = layout::Layout::Open(root, false);
    EXPECT_TRUE(l.ok());
    auto s = std::make_unique<CountingStore>();
    s->inner = std::move(*l);
    return s;
  }
  oci::StoreId id() const override { return inner->id(); }
  StatusOr<bool> HasBlob(const oci::Digest& d) override { return inner->HasBlob(d); }
  StatusOr<std::unique_ptr<oci::BlobReader>> OpenBlob(const oci::Digest& d) override {
    ++opened;
    return inner->OpenBlob(d);
  }
  Status ReadAt(const oci::Digest& d, uint64_t offset, char* buf, size_t len) override {
    ++ranges;
    return inner->ReadAt(d, offset, buf, len);
  }
  StatusOr<std::unique_ptr<oci::BlobWriter>> CreateBlob() override { return inner->CreateBlob(); }
  Status DeleteBlob(const oci::Digest& d) override { return inner->DeleteBlob(d); }
  StatusOr<oci::RawManifest> GetManifest(const std::string& r) override { return inner->GetManifest(r); }
  Status PutManifest(const oci::RawManifest& m, const std::string& t) override { return inner->PutManifest(m, t); }
  StatusOr<std::vector<std::pair<std::string, oci::Descriptor>>> ListTags() override { return inner->ListTags(); }
  std::string BlobPath(const oci::Digest& d) const { return inner->BlobPath(d); }

  std::unique_ptr<layout::Layout> inner;
  std::atomic<int> opened{0}, ranges{0};
};

class LazyTest : public ::testing::Test {
 protected:
  // A sparse raw disk of 32 chunks: data in chunks 0-9 and 20-21, holes
  // elsewhere; `variant` changes the bytes of chunk 3 only.
  std::string MakeDisk(const std::string& name, char variant) {
    const std::string path = dir_.path() + "/" + name;
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::ftruncate(fd, 32 * kChunk), 0);
    for (int c : {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 20, 21}) {
      std::string data(kChunk, '\0');
      for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 31 + c * 7) % 251);
      if (c == 3) data[100] = variant;
      EXPECT_EQ(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(c) * kChunk), kChunk);
    }
    ::close(fd);
    return path;
  }

  // A lazy entry KEY for `disk` built into its own layout, under root()
  // or `in_root` (another node's).
  std::unique_ptr<CountingStore> Entry(const std::string& disk, const std::string& key,
                                       layer::Compression compression = layer::Compression::kGzip,
                                       const std::string& in_root = "") {
    const std::string layout = dir_.path() + "/layout-" + key;
    auto m = testing::BuildV2Image(**layout::Layout::Open(layout, true), disk, kChunk, compression);
    EXPECT_TRUE(m.ok()) << m.status().message();
    auto store = CountingStore::Open(layout);
    Status s = testing::WriteLazyEntry(*store, *m, "oci:" + layout + "@" + m->str(),
                                        in_root.empty() ? root() : in_root, key);
    EXPECT_TRUE(s.ok()) << s.message();
    store->opened = 0;  // the index's range read and the config are the node cache's
    store->ranges = 0;
    return store;
  }

  // `fault`, when given, runs before each read of the blob; a failure it
  // returns is the read's.
  std::unique_ptr<ChunkStore> OpenStore(const std::string& key, CountingStore& src, bool donors = true,
                                        StoreOptions options = {}, std::function<Status()> fault = nullptr) {
    auto config = ReadServeConfig(EntryDir(root(), key));
    EXPECT_TRUE(config.ok());
    oci::Digest blob = config->layer.digest;
    options.use_donors = donors;
    auto store = ChunkStore::Open(
        root(), key,
        [&src, blob, fault](uint64_t off, char* buf, size_t len) {
          if (fault) RETURN_IF_ERROR(fault());
          return src.ReadAt(blob, off, buf, len);
        },
        std::move(options));
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::move(*store) : nullptr;
  }

  std::string ReadAll(ChunkStore& s, Status* status) {
    std::string out(s.size(), '\x55');
    // Odd pieces, crossing chunk and hole boundaries.
    for (uint64_t at = 0; at < s.size();) {
      size_t n = std::min<uint64_t>(100000, s.size() - at);
      *status = s.Read(at, n, out.data() + at);
      if (!status->ok()) return "";
      at += n;
    }
    return out;
  }

  std::string root() const { return dir_.path() + "/root"; }
  TempDir dir_{"regdisk-lazy"};
};

// Another node (lazy::PeerChunks): the verified chunks of its complete
// entry, looked up by digest as a peer server does; answers, ownership and
// the asks counted as a test sets them.
class StorePeers : public PeerChunks {
 public:
  enum class Answer { kBytes, kNothing, kPending, kCorrupt };

  explicit StorePeers(std::unique_ptr<ChunkStore> node) : node_(std::move(node)) {
    for (const layer::IndexEntry& e : node_->index().entries) {
      if (!e.zero()) held_[e.sha256] = &e;
    }
  }

  PeerResult Fetch(const layer::IndexEntry& e) override {
    int asked;
    {
      std::lock_guard<std::mutex> lock(mu_);
      asked = ++asks_[e.disk_offset];
      order_.push_back(e.disk_offset);
    }
    Answer a = asked <= pending_asks ? Answer::kPending : answer;
    if (a == Answer::kNothing) return {};
    if (a == Answer::kPending) return {.pending = true};
    auto it = held_.find(e.sha256);
    if (it == held_.end()) return {};
    std::string bytes(it->second->length, '\0');
    EXPECT_TRUE(node_->Read(it->second->disk_offset, bytes.size(), bytes.data()).ok());
    if (a == Answer::kCorrupt) bytes[7] ^= 1;
    return {.bytes = std::move(bytes)};
  }
  bool OwnsChunk(const layer::IndexEntry& e) override { return owns(e); }

  int Asks(uint64_t disk_offset) {
    std::lock_guard<std::mutex> lock(mu_);
    return asks_[disk_offset];
  }
  std::vector<uint64_t> Order() {
    std::lock_guard<std::mutex> lock(mu_);
    return order_;
  }

  Answer answer = Answer::kBytes;
  // The first `pending_asks` asks of each chunk are answered pending.
  int pending_asks = 0;
  std::function<bool(const layer::IndexEntry&)> owns = [](const layer::IndexEntry&) { return false; };

 private:
  std::unique_ptr<ChunkStore> node_;
  std::map<std::array<uint8_t, 32>, const layer::IndexEntry*> held_;
  std::mutex mu_;
  std::map<uint64_t, int> asks_;
  std::vector<uint64_t> order_;
};

}  // namespace regdisk::lazy
