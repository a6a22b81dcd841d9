#include "lazy_entry.h"

#include <nlohmann/json.hpp>

#include "layer/decompressor.h"
#include "layer/disk_index.h"
#include "oci/media_types.h"
#include "util/fs.h"

namespace regdisk::testing {

Status WriteLazyEntry(oci::Store& store, const oci::Digest& manifest, const std::string& image,
                      const std::string& root, const std::string& key, const std::string& registry_json) {
  ASSIGN_OR_RETURN(oci::RawManifest raw, store.GetManifest(manifest.str()));
  ASSIGN_OR_RETURN(oci::Manifest m, oci::ParseManifest(raw.bytes));
  ASSIGN_OR_RETURN(std::string config_bytes, oci::ReadBlob(store, m.config, 1 << 20));
  ASSIGN_OR_RETURN(oci::ImageConfig config, oci::ParseImageConfig(config_bytes));
  if (m.layers.empty() || config.diff_ids.size() != m.layers.size()) return InvalidArgument("no disk layer");
  const oci::Descriptor& layer = m.layers.back();
  ASSIGN_OR_RETURN(std::optional<layer::IndexAnchor> anchor, layer::ParseAnchor(layer));
  if (!anchor) return InvalidArgument("not a v2 layer");
  ASSIGN_OR_RETURN(layer::Codec codec, layer::CodecForMediaType(layer.media_type));
  std::string member(anchor->length, '\0');
  RETURN_IF_ERROR(store.ReadAt(layer.digest, anchor->offset, member.data(), member.size()));
  ASSIGN_OR_RETURN(layer::DiskIndex index, layer::OpenIndex(*anchor, codec, member));

  const std::string dir = lazy::EntryDir(root, key);
  RETURN_IF_ERROR(MakeDirs(dir));
  RETURN_IF_ERROR(MakeDirs(root + "/locks"));
  RETURN_IF_ERROR(WriteFileAtomic(dir + "/" + lazy::kIndexFile, layer::EncodeIndex(index)));
  auto a = layer.annotations;
  nlohmann::json meta = {{"manifest", manifest.str()},
                         {"path", a[oci::annotation::kDiskPath]},
                         {"format", a[oci::annotation::kDiskFormat]},
                         {"virtualSize", std::stoull(a[oci::annotation::kDiskVirtualSize])},
                         {"source", image},
                         {"lazy", true}};
  RETURN_IF_ERROR(WriteFileAtomic(dir + "/" + lazy::kMetaFile, meta.dump(2) + "\n"));
  lazy::ServeConfig serve{.layer = layer, .diff_id = config.diff_ids.back(), .image = image,
                          .registry = registry_json};
  return lazy::WriteServeConfig(dir, serve);
}

}  // namespace regdisk::testing
