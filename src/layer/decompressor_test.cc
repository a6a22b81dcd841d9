#include "layer/decompressor.h"

#include <gtest/gtest.h>
#include <libdeflate.h>
#include <zlib.h>

#include <random>
#include <string>
#include <vector>

namespace regdisk::layer {
namespace {

// One gzip member of `data` (libdeflate, as regdisk's writers make them).
std::string Member(const std::string& data, int level = 6) {
  libdeflate_compressor* c = libdeflate_alloc_compressor(level);
  std::string out(libdeflate_gzip_compress_bound(c, data.size()), '\0');
  out.resize(libdeflate_gzip_compress(c, data.data(), data.size(), out.data(), out.size()));
  libdeflate_free_compressor(c);
  return out;
}

// Half random bytes, half text: members that neither store nor vanish.
std::string Data(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = i % 2 ? static_cast<char>(rng()) : static_cast<char>('a' + i % 7);
  return s;
}

struct Result {
  std::string out;
  Status error;
  bool at_end = false;
};

// Feeds `blob` in pieces of `piece` bytes into buffers of `out_size`, then
// the end of the input, as the layer readers do.
Result Decode(const std::string& blob, size_t piece, size_t out_size) {
  auto dec = Decompressor::Create(Codec::kGzip);
  Result r;
  std::vector<char> out(out_size);
  size_t pos = 0;
  for (;;) {
    size_t len = std::min(piece, blob.size() - pos);
    const char* in = blob.data() + pos;
    size_t left = len;
    for (int idle = 0;;) {
      auto n = dec->Decompress(&in, &left, out.data(), out.size());
      if (!n.ok()) {
        r.error = n.status();
        return r;
      }
      r.out.append(out.data(), *n);
      if (*n == 0 && (left == 0 || ++idle > 2)) break;
    }
    pos += len - left;
    if (len == 0) break;
  }
  r.at_end = dec->AtEnd();
  return r;
}

TEST(GzipDecompressorTest, MembersOfEverySizeInAnyPieces) {
  // Small members, 1 MiB members (decoded whole), a member over 1 MiB
  // (streamed), an incompressible one (stored blocks), and an empty one.
  std::string want, blob;
  for (size_t n : {size_t{100}, size_t{1} << 20, size_t{3} << 20, size_t{1} << 20, size_t{5000}, size_t{0}}) {
    std::string d = Data(n, static_cast<unsigned>(n));
    want += d;
    blob += Member(d);
  }
  std::string random(1 << 20, '\0');
  std::mt19937 rng(7);
  for (char& c : random) c = static_cast<char>(rng());
  want += random;
  blob += Member(random);
  for (size_t piece : {size_t{1} << 22, size_t{1} << 20, size_t{65536}, size_t{4093}}) {
    for (size_t out : {size_t{1} << 20, size_t{100000}}) {
      SCOPED_TRACE("piece " + std::to_string(piece) + " out " + std::to_string(out));
      Result r = Decode(blob, piece, out);
      ASSERT_TRUE(r.error.ok()) << r.error.message();
      EXPECT_EQ(r.out.size(), want.size());
      EXPECT_TRUE(r.out == want);
      EXPECT_TRUE(r.at_end);
    }
  }
}

TEST(GzipDecompressorTest, OneBigZlibMember) {
  std::string d = Data(5 << 20, 3);
  uLongf len = compressBound(d.size()) + 64;
  std::string blob(len, '\0');
  z_stream z{};
  ASSERT_EQ(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(d.data());
  z.avail_in = d.size();
  z.next_out = reinterpret_cast<Bytef*>(blob.data());
  z.avail_out = blob.size();
  ASSERT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  blob.resize(z.total_out);
  deflateEnd(&z);
  Result r = Decode(blob, 1 << 20, 1 << 20);
  ASSERT_TRUE(r.error.ok()) << r.error.message();
  EXPECT_TRUE(r.out == d);
  EXPECT_TRUE(r.at_end);
}

TEST(GzipDecompressorTest, TruncatedIsNotAtEnd) {
  std::string blob = Member(Data(1 << 20, 1)) + Member(Data(1 << 20, 2));
  for (size_t cut : {blob.size() - 1, blob.size() / 2 + 10, size_t{30}}) {
    Result r = Decode(blob.substr(0, cut), 1 << 20, 1 << 20);
    EXPECT_TRUE(!r.error.ok() || !r.at_end) << cut;
  }
}

TEST(GzipDecompressorTest, DamageIsCorrupt) {
  std::string good = Member(Data(1 << 20, 1));
  std::string flipped = good;
  flipped[flipped.size() / 2] ^= 0x40;
  std::string crc = good;
  crc[crc.size() - 6] ^= 1;  // the CRC-32 in the trailer
  for (const std::string& blob : {flipped, crc, good + "garbage after the member"}) {
    Result r = Decode(blob, 1 << 20, 1 << 20);
    EXPECT_EQ(r.error.code(), Code::kCorrupt) << r.error.message();
  }
  Result not_gzip = Decode("not gzip at all", 1 << 20, 1 << 20);
  EXPECT_EQ(not_gzip.error.code(), Code::kCorrupt);
}

}  // namespace
}  // namespace regdisk::layer
