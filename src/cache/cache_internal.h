// Helpers shared by the node cache's files (node_cache.cc, lazy_entry.cc);
// not part of the cache's interface.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "cache/node_cache.h"
#include "disk/format.h"
#include "layer/disk_extractor.h"
#include "oci/manifest.h"
#include "oci/store.h"
#include "util/status.h"

namespace regdisk::cache {

// "/disk/NAME" (or "") -> "NAME" (or ""); any other clean absolute path
// ("/custom-disk/x", as containerDisk.path allows) is returned as it is.
StatusOr<std::string> DiskName(const std::string& path);
// The extractor for the disk `rel` (DiskName's result).
std::unique_ptr<layer::DiskExtractor> ExtractorFor(const std::string& work, const CacheOptions& o,
                                                  const std::string& rel, bool headers_only);
// The cache key of the disk `rel` of the image manifest `manifest`.
std::string KeyFor(const oci::Digest& manifest, const std::string& rel);
// The format the image declares for the disk at `path_in_image`.
std::optional<disk::Format> DeclaredFormat(const oci::Manifest& m, const std::string& path_in_image);

// The manifest, config and layers of an image manifest `digest`.
struct ImageParts {
  oci::RawManifest raw;
  oci::Manifest manifest;
  std::string raw_config;
  oci::ImageConfig config;
};
// The manifest `digest` (`picked` when that is it: the platform walk has
// fetched it already), its config, and the check that the image is for
// `platform` whether an index chose it or it was named alone.
StatusOr<ImageParts> ReadImageParts(oci::Store& src, const oci::Digest& digest,
                                    const std::optional<oci::RawManifest>& picked, const oci::Platform& platform);
// Feeds the first `count` layers, bottom first, to `extractor`, each read
// whole and verified.
Status AddLayers(oci::Store& src, const ImageParts& img, size_t count, layer::DiskExtractor& extractor,
                 const std::function<void(uint64_t)>& on_bytes);

}  // namespace regdisk::cache
