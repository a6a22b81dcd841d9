// Where an image lives, as named on the command line (skopeo's transports):
//   NAME[:TAG]              the local store (tag = the normalised reference)
//   oci:PATH[:TAG]          any OCI image layout directory (tag "latest")
//   docker://NAME[:TAG]     a registry
#pragma once

#include <string>
#include <string_view>

#include "oci/reference.h"
#include "util/status.h"

namespace regdisk::oci {

struct ImageLocation {
  enum class Transport { kLocal, kOciLayout, kDocker };
  Transport transport = Transport::kLocal;
  Reference ref;     // kLocal and kDocker
  std::string path;  // kOciLayout
  std::string tag;   // the tag inside the store or layout

  static StatusOr<ImageLocation> Parse(std::string_view s);
  std::string str() const;
};

}  // namespace regdisk::oci
