#include "oci/location.h"

namespace regdisk::oci {

StatusOr<ImageLocation> ImageLocation::Parse(std::string_view s) {
  ImageLocation loc;
  if (s.starts_with("oci:")) {
    std::string_view rest = s.substr(4);
    // As skopeo: the first ':' separates the directory from the tag.
    auto colon = rest.find(':');
    loc.transport = Transport::kOciLayout;
    loc.path = std::string(rest.substr(0, colon));
    loc.tag = colon == std::string_view::npos ? "latest" : std::string(rest.substr(colon + 1));
    if (loc.path.empty()) return InvalidArgument("invalid image \"" + std::string(s) + "\": oci: needs a directory");
    if (loc.tag.empty()) return InvalidArgument("invalid image \"" + std::string(s) + "\": empty tag after ':'");
    for (char c : loc.tag) {
      // The OCI ref.name grammar, minus characters that could confuse a
      // shell or a path.
      if (!(isalnum(static_cast<unsigned char>(c)) || std::string_view("._-:@/+").find(c) != std::string_view::npos)) {
        return InvalidArgument("invalid image \"" + std::string(s) + "\": tag has character '" +
                               std::string(1, c) + "'");
      }
    }
    return loc;
  }
  if (s.starts_with("docker://")) {
    loc.transport = Transport::kDocker;
    ASSIGN_OR_RETURN(loc.ref, Reference::Parse(s.substr(9)));
    loc.tag = loc.ref.identifier();
    return loc;
  }
  auto scheme = s.find("://");
  if (scheme != std::string_view::npos) {
    return InvalidArgument("invalid image \"" + std::string(s) +
                           "\": unknown transport (use NAME, oci:PATH[:TAG] or docker://NAME)");
  }
  loc.transport = Transport::kLocal;
  ASSIGN_OR_RETURN(loc.ref, Reference::Parse(s));
  loc.tag = loc.ref.str();
  return loc;
}

std::string ImageLocation::str() const {
  switch (transport) {
    case Transport::kOciLayout: return "oci:" + path + ":" + tag;
    case Transport::kDocker: return "docker://" + ref.str();
    case Transport::kLocal: break;
  }
  return ref.str();
}

}  // namespace regdisk::oci
