#include "oci/store.h"

#include <algorithm>

#include "util/sha256.h"

namespace regdisk::oci {
namespace {

// The reader OpenBlob returns: passes on at most desc.size bytes of the
// source, hashing them (unless the source checks the same digest itself),
// and then probes for one more.
class DescribedReader : public BlobReader {
 public:
  DescribedReader(std::unique_ptr<BlobReader> source, Descriptor desc)
      : source_(std::move(source)), desc_(std::move(desc)), source_verifies_(source_->verifies() == desc_.digest) {}

  uint64_t size() const override { return desc_.size; }
  std::optional<Digest> verifies() const override { return desc_.digest; }

  StatusOr<size_t> Read(void* buf, size_t len) override {
    RETURN_IF_ERROR(error_);
    if (finished_) return size_t{0};
    auto n = ReadSome(buf, len);
    if (!n.ok()) error_ = n.status();
    return n;
  }

 private:
  StatusOr<size_t> ReadSome(void* buf, size_t len) {
    uint64_t left = desc_.size - offset_;
    if (left == 0) return Finish();
    ASSIGN_OR_RETURN(size_t n, source_->Read(buf, std::min<uint64_t>(len, left)));
    if (n > left) return Longer();  // a source that ignored `len`
    if (n == 0) {
      return Corrupt("blob " + desc_.digest.str() + " ended after " + std::to_string(offset_) + " of " +
                     std::to_string(desc_.size) + " bytes");
    }
    if (!source_verifies_) hash_.Update(buf, n);
    offset_ += n;
    return n;
  }

  // At desc.size: the source must end here, and the digest must match.
  StatusOr<size_t> Finish() {
    char extra;
    ASSIGN_OR_RETURN(size_t n, source_->Read(&extra, 1));
    if (n != 0) return Longer();
    if (source_verifies_) {  // its final 0 says the digest matched
      finished_ = true;
      return size_t{0};
    }
    Digest got = Digest::FromHex(hash_.FinishHex());
    if (got != desc_.digest) {
      return Corrupt("blob " + desc_.digest.str() + " does not match its digest: the content has digest " +
                     got.str());
    }
    finished_ = true;
    return size_t{0};
  }

  Status Longer() const {
    return Corrupt("blob " + desc_.digest.str() + " is longer than its descriptor's " + std::to_string(desc_.size) +
                   " bytes");
  }

  std::unique_ptr<BlobReader> source_;
  Descriptor desc_;
  const bool source_verifies_;  // the source checks desc_.digest: no second hash
  uint64_t offset_ = 0;
  Sha256 hash_;
  bool finished_ = false;
  Status error_;
};

StatusOr<std::string> ReadAll(BlobReader& reader, const Digest& digest, uint64_t limit) {
  if (reader.size() > limit) {
    return InvalidArgument("blob " + digest.str() + " is " + std::to_string(reader.size()) +
                           " bytes, over the limit of " + std::to_string(limit));
  }
  std::string out(reader.size(), '\0');
  size_t have = 0;
  while (have < out.size()) {
    ASSIGN_OR_RETURN(size_t n, reader.Read(out.data() + have, out.size() - have));
    if (n == 0) return Corrupt("blob " + digest.str() + " is shorter than its size");
    have += n;
  }
  return out;
}

}  // namespace

StatusOr<std::unique_ptr<BlobReader>> OpenBlob(Store& store, const Descriptor& desc) {
  ASSIGN_OR_RETURN(auto source, store.OpenBlob(desc.digest));
  if (source->size() != desc.size) {
    return Corrupt("blob " + desc.digest.str() + " has size " + std::to_string(source->size()) +
                   " at the source, but its descriptor says " + std::to_string(desc.size));
  }
  return std::unique_ptr<BlobReader>(new DescribedReader(std::move(source), desc));
}

StatusOr<std::string> ReadBlob(Store& store, const Descriptor& desc, uint64_t limit) {
  if (desc.size > limit) {
    return InvalidArgument("blob " + desc.digest.str() + " is " + std::to_string(desc.size) +
                           " bytes, over the limit of " + std::to_string(limit));
  }
  ASSIGN_OR_RETURN(auto reader, OpenBlob(store, desc));
  ASSIGN_OR_RETURN(std::string out, ReadAll(*reader, desc.digest, limit));
  char end;
  ASSIGN_OR_RETURN(size_t n, reader->Read(&end, 1));  // the size and digest checks
  if (n != 0) return Internal("blob reader went past its size");
  return out;
}

StatusOr<std::string> ReadBlob(Store& store, const Digest& digest, uint64_t limit) {
  ASSIGN_OR_RETURN(auto reader, store.OpenBlob(digest));
  ASSIGN_OR_RETURN(std::string out, ReadAll(*reader, digest, limit));
  if (Digest::Of(out) != digest) return Corrupt("blob " + digest.str() + " does not match its digest");
  return out;
}

StatusOr<RawManifest> SelectManifest(Store& store, RawManifest root, const Platform& want) {
  for (int depth = 0; IsIndexType(root.descriptor.media_type); ++depth) {
    if (depth >= kMaxIndexDepth) {
      return InvalidArgument("image index nesting deeper than " + std::to_string(kMaxIndexDepth) + " levels");
    }
    ASSIGN_OR_RETURN(Index index, ParseIndex(root.bytes));
    ASSIGN_OR_RETURN(Descriptor pick, SelectPlatform(index, want));
    ASSIGN_OR_RETURN(root, store.GetManifest(pick.digest.str()));
  }
  if (!IsManifestType(root.descriptor.media_type)) {
    return InvalidArgument(root.descriptor.digest.str() + " is a " + Quote(root.descriptor.media_type) +
                           ", not an image manifest");
  }
  return root;
}

StatusOr<Descriptor> WriteBlob(Store& store, std::string_view data, const std::string& media_type) {
  ASSIGN_OR_RETURN(auto writer, store.CreateBlob());
  RETURN_IF_ERROR(writer->Write(data.data(), data.size()));
  return writer->Commit(media_type, Digest::Of(data));
}

StatusOr<RawManifest> PutManifest(Store& store, const Manifest& m, const std::string& tag) {
  RawManifest raw;
  raw.bytes = EncodeManifest(m);
  raw.descriptor.media_type = m.media_type;
  raw.descriptor.digest = Digest::Of(raw.bytes);
  raw.descriptor.size = raw.bytes.size();
  RETURN_IF_ERROR(store.PutManifest(raw, tag));
  return raw;
}

}  // namespace regdisk::oci
