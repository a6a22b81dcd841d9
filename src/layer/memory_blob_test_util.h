// Tests only: an in-memory store of one blob, written by LayerWriter and
// read back by the extractor or the v2 checks.
#pragma once

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>

#include "oci/store.h"

namespace regdisk::layer {

class MemoryBlob : public oci::BlobWriter, public oci::BlobReader {
 public:
  explicit MemoryBlob(std::string* bytes) : bytes_(bytes) {}
  Status Write(const void* d, size_t n) override {
    bytes_->append(static_cast<const char*>(d), n);
    return OkStatus();
  }
  StatusOr<oci::Descriptor> Commit(const std::string& type, const std::optional<oci::Digest>&) override {
    return oci::Descriptor{type, oci::Digest::Of(*bytes_), bytes_->size(), {}, {}};
  }
  bool created() const override { return true; }
  StatusOr<size_t> Read(void* buf, size_t len) override {
    size_t n = std::min(len, bytes_->size() - pos_);
    std::memcpy(buf, bytes_->data() + pos_, n);
    pos_ += n;
    return n;
  }
  uint64_t size() const override { return bytes_->size(); }

 private:
  std::string* bytes_;
  size_t pos_ = 0;
};

}  // namespace regdisk::layer
