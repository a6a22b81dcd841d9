// libFuzzer target: the OCI parsers (references, manifests, indexes, image
// configs, media type sniffing) on arbitrary bytes. Each must return a status
// (never crash, hang or throw); errors must be one line; whatever parses
// must encode to something that parses back to the same encoding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "oci/manifest.h"
#include "oci/reference.h"

namespace {

using namespace regdisk;
using namespace regdisk::oci;

void Check(bool ok) {
  if (!ok) std::abort();
}

// A refusal: a non-empty, one-line message.
void CheckError(const Status& st) {
  Check(!st.ok() && !st.message().empty() && st.message().find('\n') == std::string::npos);
}

template <typename T, typename Parse, typename Encode>
void RoundTrip(std::string_view input, Parse parse, Encode encode) {
  StatusOr<T> v = parse(input);
  if (!v.ok()) {
    CheckError(v.status());
    return;
  }
  std::string once = encode(*v);
  StatusOr<T> again = parse(once);
  Check(again.ok());
  Check(encode(*again) == once);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);

  auto ref = Reference::Parse(input);
  if (ref.ok()) {
    auto again = Reference::Parse(ref->str());
    Check(again.ok() && again->str() == ref->str());
    auto familiar = Reference::Parse(ref->familiar());
    Check(familiar.ok() && familiar->str() == ref->str());
  } else {
    CheckError(ref.status());
  }

  RoundTrip<Manifest>(input, ParseManifest, EncodeManifest);
  RoundTrip<Index>(input, ParseIndex, EncodeIndex);
  RoundTrip<ImageConfig>(input, ParseImageConfig, EncodeImageConfig);

  auto type = SniffMediaType(input);
  if (!type.ok()) CheckError(type.status());

  auto platform = Platform::Parse(input);
  if (platform.ok()) {
    auto again = Platform::Parse(platform->str());
    Check(again.ok() && again->str() == platform->str());
  } else {
    CheckError(platform.status());
  }
  return 0;
}
