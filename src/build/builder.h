// Builds registry-disk images: one layer per disk, holding disk/<name>
// (owner 107:107, mode 0440: what the runtime's qemu user reads), on top of
// an optional base image, written into a Store. Deterministic: the same
// disks and options give the same manifest digest.
//
// Every disk is inspected before anything is written (format, qcow2 safety),
// and a failed build removes the blobs it added, so bad input leaves nothing
// in the store.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "disk/format.h"
#include "layer/layer_writer.h"
#include "oci/manifest.h"
#include "oci/store.h"
#include "util/status.h"

namespace regdisk::build {

// Owner and mode of disk files in the layer: qemu in KubeVirt runs as 107.
inline constexpr int kDiskUid = 107;
inline constexpr int kDiskGid = 107;
inline constexpr int kDiskMode = 0440;

struct DiskSource {
  std::string path;                    // the file on this machine
  std::string name;                    // file name inside /disk
  std::optional<disk::Format> format;  // declared; detected when unset
  int uid = kDiskUid, gid = kDiskGid;
};

// A plain file for the image (the base image's regdisk-serve), in one
// layer of its own below the disks, with an empty /disk beside it.
struct FileSource {
  std::string path;          // on this machine
  std::string dest;          // in the image, relative: "regdisk-serve"
  int mode = 0755;
};

// The layout of disk layers. v2 (docs/disk-standard-v2.md) is still one
// tar that every v1alpha reader extracts unchanged, with the disk's data in
// independently compressed chunks and a chunk index anchored in the layer's
// annotations, for verified random access.
enum class DiskStandard { kV1alpha, kV2 };
StatusOr<DiskStandard> ParseDiskStandard(std::string_view name);  // v1alpha | v2
const char* DiskStandardName(DiskStandard s);

struct BuildOptions {
  std::vector<DiskSource> disks;
  std::vector<FileSource> files;
  std::vector<std::string> entrypoint;  // config Entrypoint, if set
  bool convert_to_qcow2 = false;  // run raw disks through qemu-img convert
  layer::LayerOptions layer;     // its chunk_size is set from the two below
  DiskStandard standard = DiskStandard::kV2;
  uint32_t chunk_size = layer::kDefaultChunkSize;  // v2: disk bytes per chunk
  oci::Platform platform;         // used when there is no base image
  std::map<std::string, std::string> labels;
  std::vector<std::pair<std::string, std::string>> env;
  std::function<void(uint64_t)> on_bytes;  // progress over all disks
};

// A base image already in `store` (the local store or an OCI layout).
struct BaseImage {
  oci::Store* store = nullptr;
  oci::Descriptor manifest;
};

struct BuiltDisk {
  std::string path_in_image;  // /disk/<name>
  disk::DiskInfo info;        // after conversion
  oci::Descriptor layer;
};

struct BuildResult {
  oci::Descriptor manifest;
  std::vector<BuiltDisk> disks;
};

// Builds the image into `dest` and tags it `tag` there (the last step, so a
// failure never leaves a tag pointing at a half image).
StatusOr<BuildResult> BuildImage(oci::Store& dest, const BuildOptions& options,
                                 const std::optional<BaseImage>& base, const std::string& tag);

// The image creation time: $SOURCE_DATE_EPOCH if set, else the epoch
// (reproducible builds), as RFC 3339.
std::string BuildTimestamp();

}  // namespace regdisk::build

namespace regdisk::build {

struct Dockerfile;

// Adds the Dockerfile's ADD/COPY sources (resolved inside `context`; a
// symlink that leads outside it is refused), LABELs and ENVs to `options`.
// FROM is left to the caller, which knows where images live.
Status ApplyDockerfile(const Dockerfile& df, const std::string& context, BuildOptions& options);

}  // namespace regdisk::build
