#include "oci/store.h"

namespace regdisk::oci {

StatusOr<std::string> ReadBlob(Store& store, const Digest& digest, uint64_t limit) {
  ASSIGN_OR_RETURN(auto reader, store.OpenBlob(digest));
  if (reader->size() > limit) {
    return InvalidArgument("blob " + digest.str() + " is " + std::to_string(reader->size()) +
                           " bytes, over the limit of " + std::to_string(limit));
  }
  std::string out(reader->size(), '\0');
  size_t have = 0;
  while (have < out.size()) {
    ASSIGN_OR_RETURN(size_t n, reader->Read(out.data() + have, out.size() - have));
    if (n == 0) return Corrupt("blob " + digest.str() + " is shorter than its size");
    have += n;
  }
  if (Digest::Of(out) != digest) return Corrupt("blob " + digest.str() + " does not match its digest");
  return out;
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
