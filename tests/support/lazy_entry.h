// Test tooling: a lazy cache entry ROOT/disks/KEY written the way the node
// cache writes one (/work/wt/LAZY-CONTRACT.md), for the chunk store and
// the nbdkit plugin to serve.
#pragma once

#include <string>

#include "lazy/entry.h"
#include "oci/store.h"
#include "util/status.h"

namespace regdisk::testing {

// The entry of image manifest `manifest` in `store` (its disk layer is the
// last layer): meta.json with "lazy": true, serve.json naming `image`
// ("docker://HOST/REPO@sha256:..." or "oci:/PATH@sha256:...") with
// `registry_json` as its registry flags, and the index, fetched with one
// range read and opened against the anchor (layer::OpenIndex).
Status WriteLazyEntry(oci::Store& store, const oci::Digest& manifest, const std::string& image,
                      const std::string& root, const std::string& key, const std::string& registry_json = "{}");

}  // namespace regdisk::testing
