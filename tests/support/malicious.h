// The malicious-image suite: images that the node runtime must refuse, each
// with the cause its error must name. Written into any oci::Store, so the
// same suite runs against a local layout and the real registry.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "oci/store.h"
#include "util/status.h"

namespace regdisk::forge {

struct MaliciousCase {
  std::string name;
  std::string expect;      // substring of the refusal
  std::string path;        // the volume's path, if any
  // Puts the image into `store` under `tag`; `corrupt` (if needed) alters a
  // stored blob in place, bypassing the store's own checks.
  std::function<Status(oci::Store& store, const std::string& tag,
                       const std::function<void(const oci::Digest&)>& corrupt)>
      put;
  uint64_t max_disk_size = 0;  // the --max-disk-size it runs with; 0: the default
};

// `scratch` is a directory for qemu-img's temporary files. Gzip-bomb cases
// assume a layer limit below 64 MiB. Every refusal message must be one line
// without a control character, whatever the image holds.
std::vector<MaliciousCase> MaliciousCases(const std::string& scratch);

}  // namespace regdisk::forge
