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

#include <cstddef>
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
// serve.json's "peers" (the --peers spec) at most: 256 peers (the client's
// limit) of 250 bytes each, a DNS name and a port; a longer list belongs
// in an @file.
inline constexpr size_t kMaxPeerSpecBytes = 64 << 10;
// "peerSelf" at most: a DNS name (253 bytes), ':' and a port.
inline constexpr size_t kMaxPeerAddressBytes = 260;
// "peerTimeoutMs" at most: a peer slower than a minute for one chunk is
// no help beside the registry.
inline constexpr uint64_t kMaxPeerTimeoutMs = 60'000;

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
  // Other nodes that may hold the disk's chunks (lazy/peer_chunks.h): the
  // --peers spec (peer::OpenPeers reads it), this node's own peer server
  // (HOST:PORT), and the per-peer timeout in ms (0: the client's default).
  // Each is written only when set, so a node without peers writes the
  // serve.json it always did.
  std::string peers;
  std::string peer_self;
  uint64_t peer_timeout_ms = 0;
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
