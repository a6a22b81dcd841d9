// A lazy cache entry, ROOT/disks/KEY/ (/work/wt/LAZY-CONTRACT.md): a v2 disk
// served before it is downloaded. Its files:
//
//   meta.json     as for a full entry, plus "lazy": true        (the node cache)
//   serve.json    how to reach the layer blob (ServeConfig), 0600 (the node cache)
//   index         the layer's chunk index, uncompressed          (the node cache)
//   disk.partial  a sparse file of the disk's size; verified chunks in place
//   chunks        which chunks disk.partial holds (chunk_map.h)
//   disk          disk.partial once complete and checked (Promote), 0444
//
// Every reader re-checks what it reads: the index against the anchor in
// serve.json's layer annotations (ReadEntryIndex), chunks against the index.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "layer/disk_index.h"
#include "oci/manifest.h"
#include "util/status.h"

namespace regdisk::lazy {

inline constexpr char kMetaFile[] = "meta.json";
inline constexpr char kServeFile[] = "serve.json";
inline constexpr char kIndexFile[] = "index";
inline constexpr char kPartialFile[] = "disk.partial";
inline constexpr char kChunksFile[] = "chunks";
inline constexpr char kDiskFile[] = "disk";

// serve.json and meta.json are a few hundred bytes plus the layer's
// annotations; a megabyte is far past any real one.
inline constexpr uint64_t kMaxEntryJsonBytes = 1 << 20;

// ROOT/disks/KEY and ROOT/locks/disk-KEY.lock (the node cache's names).
std::string EntryDir(const std::string& root, const std::string& key);
std::string KeyLockPath(const std::string& root, const std::string& key);

// serve.json.
struct ServeConfig {
  oci::Descriptor layer;  // the disk layer, with its v2 anchor annotations
  oci::Digest diff_id;
  // "docker://HOST[:PORT]/REPO@sha256:M", or "oci:/ABS/LAYOUT@sha256:M".
  std::string image;
  // A JSON object: resolve::RegistryFlagsJson's (this library does not
  // read it; the serving process gives it to resolve). Empty: "{}".
  std::string registry = "{}";
  std::string auth_file;   // an imagePullSecret's auth file, or ""
  uint64_t fill_rate = 0;  // bytes/s for the background fill; 0: unlimited
  uint64_t fill_delay = 0; // seconds the server waits before the fill begins
  // For tests only (the node never writes it): seconds a read waits out a
  // registry outage when shorter than the server's own limit; 0: that limit.
  uint64_t outage_wait = 0;
};
std::string EncodeServeConfig(const ServeConfig& config);
// Outside data after all (a file on disk): bounded, every field checked.
StatusOr<ServeConfig> ParseServeConfig(std::string_view text);
// ENTRY/serve.json, atomically, mode 0600 (it may name an auth file).
Status WriteServeConfig(const std::string& entry_dir, const ServeConfig& config);
StatusOr<ServeConfig> ReadServeConfig(const std::string& entry_dir);

// ENTRY/index, re-checked against the anchor in `config.layer` (digest
// before parsing, then layer::OpenIndexBytes). The error names the entry.
StatusOr<layer::DiskIndex> ReadEntryIndex(const std::string& entry_dir, const ServeConfig& config);

}  // namespace regdisk::lazy
