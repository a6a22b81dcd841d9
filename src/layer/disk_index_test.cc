// The chunk index codec and its bounds: every rule of ValidateIndex and of
// the anchor annotations has a hostile case here (the fuzz target,
// fuzz/disk_index_fuzz.cc, looks for the ones nobody thought of).
#include "layer/disk_index.h"

#include <gtest/gtest.h>

#include "layer/chunk_reader.h"

namespace regdisk::layer {
namespace {

constexpr uint64_t kCs = 1 << 20;

IndexEntry Data(uint64_t off, uint64_t len, uint64_t blob_off, uint64_t blob_len, uint8_t tag = 1) {
  IndexEntry e{off, len, blob_off, blob_len, {}};
  e.sha256.fill(tag);
  return e;
}
IndexEntry Zero(uint64_t off, uint64_t len) { return IndexEntry{off, len, 0, 0, {}}; }

// 0..1M data, 1M..3M hole, 3M..3.5M data; members at 1536 and after.
DiskIndex Good() {
  DiskIndex x;
  x.chunk_size = kCs;
  x.codec = Codec::kGzip;
  x.disk_size = 3 * kCs + kCs / 2;
  x.entries = {Data(0, kCs, 1536, 1000), Zero(kCs, 2 * kCs), Data(3 * kCs, kCs / 2, 2536, 500, 2)};
  return x;
}

std::string Error(const DiskIndex& x, uint64_t data_end = 1 << 30) {
  auto d = DecodeIndex(EncodeIndex(x), data_end);
  return d.ok() ? "" : d.status().message();
}

TEST(DiskIndex, RoundTripsAndFindsEntries) {
  const DiskIndex x = Good();
  const std::string bytes = EncodeIndex(x);
  EXPECT_EQ(bytes.size(), kIndexHeaderBytes + 3 * kIndexEntryBytes);
  auto d = DecodeIndex(bytes, 4000);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(EncodeIndex(*d), bytes);
  EXPECT_EQ(d->entries[2].sha256[0], 2);
  EXPECT_EQ(FindEntry(*d, 0), 0u);
  EXPECT_EQ(FindEntry(*d, kCs), 1u);
  EXPECT_EQ(FindEntry(*d, 3 * kCs - 1), 1u);
  EXPECT_EQ(FindEntry(*d, 3 * kCs + kCs / 2 - 1), 2u);
  EXPECT_EQ(FindEntry(*d, 3 * kCs + kCs / 2), std::nullopt);
}

TEST(DiskIndex, EveryRuleHasItsError) {
  struct Case {
    const char* name;
    void (*mutate)(DiskIndex&);
    const char* expect;
  };
  const Case cases[] = {
      {"overlap", [](DiskIndex& x) { x.entries[1].disk_offset -= 1; }, "(overlap)"},
      {"gap", [](DiskIndex& x) { x.entries[1].length -= 4096; }, "(gap)"},
      {"short coverage", [](DiskIndex& x) { x.disk_size += 1; }, "entries cover"},
      {"past the disk", [](DiskIndex& x) { x.disk_size -= 1; }, "runs past the disk size"},
      {"crosses a chunk", [](DiskIndex& x) { x.entries[2].disk_offset = 3 * kCs - 1; x.entries[1].length -= 1; }, "crosses a chunk boundary"},
      {"member too big", [](DiskIndex& x) { x.entries[2].blob_length = 1ull << 40; }, "out of bounds"},
      {"not contiguous", [](DiskIndex& x) { x.entries[2].blob_offset += 1; }, "does not follow"},
      {"backwards", [](DiskIndex& x) { x.entries[2].blob_offset = 0; }, "does not follow"},
      {"empty entry", [](DiskIndex& x) { x.entries.insert(x.entries.begin() + 1, Zero(kCs, 0)); }, "empty"},
      {"two holes", [](DiskIndex& x) { x.entries[1].length = kCs; x.entries.insert(x.entries.begin() + 2, Zero(2 * kCs, kCs)); }, "two zero extents"},
      {"hole with digest", [](DiskIndex& x) { x.entries[1].sha256[5] = 1; }, "zero extent with a blob offset"},
      {"chunk size", [](DiskIndex& x) { x.chunk_size = 3 << 20; }, "not a power of two"},
      {"tiny chunk", [](DiskIndex& x) { x.chunk_size = 4096; }, "not a power of two"},
      {"none lengths", [](DiskIndex& x) { x.codec = Codec::kNone; }, "out of bounds"},
  };
  for (const Case& c : cases) {
    DiskIndex x = Good();
    c.mutate(x);
    const std::string err = Error(x);
    EXPECT_NE(err.find(c.expect), std::string::npos) << c.name << ": " << err;
  }
  EXPECT_NE(Error(Good(), 3000).find("runs past the index"), std::string::npos) << "members past the blob's data";
}

TEST(DiskIndex, MalformedBytesAreRefused) {
  const std::string good = EncodeIndex(Good());
  auto err = [](std::string b) {
    auto d = DecodeIndex(b, 1 << 30);
    return d.ok() ? std::string() : d.status().message();
  };
  EXPECT_NE(err("").find("shorter than its header"), std::string::npos);
  EXPECT_NE(err(good.substr(0, good.size() - 1)).find("does not match its 3 entries"), std::string::npos);
  std::string magic = good;
  magic[0] = 'X';
  EXPECT_NE(err(magic).find("bad magic"), std::string::npos);
  std::string codec = good;
  codec[12] = 7;
  EXPECT_NE(err(codec).find("unknown compression"), std::string::npos);
  std::string reserved = good;
  reserved[14] = 1;
  EXPECT_NE(err(reserved).find("reserved"), std::string::npos);
  std::string count = good;
  count[24 + 7] = 0x10;  // 2^60 entries
  EXPECT_NE(err(count).find("more than"), std::string::npos);
}

oci::Descriptor Layer(const std::string& position, const std::string& chunk = "1048576") {
  oci::Descriptor d;
  d.size = 10000;
  d.annotations[kIndexDigestAnnotation] = oci::Digest::Of("x").str();
  d.annotations[kIndexPositionAnnotation] = position;
  d.annotations[kChunkSizeAnnotation] = chunk;
  return d;
}

TEST(DiskIndex, AnchorAnnotations) {
  IndexAnchor a{oci::Digest::Of("x"), 9000, 100, 32 + 64, kCs};
  oci::Descriptor d;
  d.size = 9100;
  AnnotateAnchor(a, d.annotations);
  EXPECT_EQ(d.annotations[kIndexPositionAnnotation], "9000:100:96");
  auto p = ParseAnchor(d);
  ASSERT_TRUE(p.ok() && p->has_value()) << p.status().message();
  EXPECT_EQ((*p)->offset, 9000u);
  EXPECT_EQ((*p)->digest, a.digest);
  EXPECT_FALSE(ParseAnchor(oci::Descriptor{}).value().has_value()) << "a v1alpha layer";

  for (const std::string& bad : std::vector<std::string>{"9000:100", "9000:100:96:1", "09000:100:96", "-1:100:96", "9000::96",
                                "99999999999999999999999:1:96", "9950:100:96", "0:0:96", "0:100:95",
                                "0:100:" + std::to_string(kMaxIndexBytes + 64), "0:9000:96"}) {
    EXPECT_FALSE(ParseAnchor(Layer(bad)).ok()) << bad;
  }
  EXPECT_FALSE(ParseAnchor(Layer("0:100:96", "1000")).ok());
  oci::Descriptor partial = Layer("0:100:96");
  partial.annotations.erase(kChunkSizeAnnotation);
  EXPECT_NE(ParseAnchor(partial).status().message().find("missing"), std::string::npos);
}

TEST(DiskIndex, DecodeMemberIsExact) {
  EXPECT_FALSE(DecodeMember(Codec::kNone, "abc", 4).ok());
  EXPECT_FALSE(DecodeMember(Codec::kGzip, "not gzip", 8).ok());
  EXPECT_FALSE(DecodeMember(Codec::kZstd, "not zstd", 8).ok());
  EXPECT_EQ(*DecodeMember(Codec::kNone, "abc", 3), "abc");
}

}  // namespace
}  // namespace regdisk::layer
