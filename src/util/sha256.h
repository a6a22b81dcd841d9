// Incremental SHA-256 through OpenSSL's EVP interface (uses SHA-NI when the
// CPU has it). Not thread-safe; one hasher per stream.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace regdisk {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t len);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  // Lowercase hex of the digest; the hasher must not be used afterwards.
  std::string FinishHex();

  static std::string HexOf(std::string_view data);

 private:
  evp_md_ctx_st* ctx_;
};

}  // namespace regdisk
