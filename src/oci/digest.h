// Content digests ("sha256:<64 hex>"). A Digest can only be made by Parse()
// or by hashing, so a Digest in hand is always well-formed and safe to use
// as a file name (CVE-2024-3727: unverified digests used as paths).
#pragma once

#include <string>
#include <string_view>

#include "util/status.h"

namespace regdisk::oci {

class Digest {
 public:
  // Accepts only "sha256:" followed by exactly 64 lowercase hex digits.
  // (sha512 is in the OCI spec but no registry regdisk targets emits it.)
  static StatusOr<Digest> Parse(std::string_view s);
  static Digest FromHex(std::string_view sha256_hex);  // hex must be from Sha256
  static Digest Of(std::string_view data);

  Digest() = default;  // empty; only valid as a placeholder
  bool empty() const { return hex_.empty(); }
  const std::string& hex() const { return hex_; }
  std::string algorithm() const { return "sha256"; }
  std::string str() const { return "sha256:" + hex_; }
  std::string short_hex() const { return hex_.substr(0, 12); }

  friend bool operator==(const Digest&, const Digest&) = default;
  friend auto operator<=>(const Digest&, const Digest&) = default;

 private:
  explicit Digest(std::string hex) : hex_(std::move(hex)) {}
  std::string hex_;
};

}  // namespace regdisk::oci
