// The node cache: on a node, a registry disk becomes one verified local file
// shared by every VM that uses it, and each VM gets its own throw-away qcow2
// overlay on top of it.
//
//   ROOT/images/                OCI layout: manifests and configs by digest,
//                               tags = references pulled (for IfNotPresent)
//   ROOT/disks/KEY/disk         the extracted disk, mode 0444
//   ROOT/disks/KEY/meta.json    format, sizes, source, manifest digest
//   ROOT/disks/KEY/...          a lazy entry (below): "lazy": true in
//                               meta.json, serve.json, index, and the NBD
//                               server's files (nbd_server.h)
//   ROOT/vms/VM/lease.json      the VM's pinned digest and disk key
//   ROOT/vms/VM/overlay.qcow2   the VM's writes; backing file = the disk
//   ROOT/locks/*.lock           flocks: one per disk key, one per VM
//   ROOT/tmp/                   work in progress, never trusted
//
// Every entry is published by a rename after it was verified (layer digests,
// diff_ids, our qcow2 checks and qemu-img's), so a crash leaves the old
// state or the new one. A VM's overlay is the exception: it is thrown away
// when the machine restarts (its lease records the boot it was made in), so
// it is never synced, and a lease costs one fsync (see Prepare). Concurrent prepares of one image, from threads or
// processes, serialise on the disk key's flock: one downloads, the others
// find the entry. gc takes the same lock, so it never removes a disk that a
// prepare is about to lease.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cache/nbd_server.h"
#include "disk/format.h"
#include "layer/disk_extractor.h"
#include "layout/layout.h"
#include "lazy/entry.h"
#include "lazy/peer_chunks.h"
#include "oci/manifest.h"
#include "oci/reference.h"
#include "oci/store.h"
#include "util/status.h"

namespace regdisk::cache {

struct CacheOptions {
  std::string root = "/var/lib/regdisk";
  layer::ExtractLimits limits;
  oci::Platform platform = oci::Platform::Host();
  std::function<void(uint64_t)> on_bytes;  // download progress
  // The server of a lazy entry ROOT/disks/KEY (tests serve with nbdkit's
  // own plugins).
  std::function<ServerCommand(const std::string& root, const std::string& key)> server = PluginCommand;
  // Other nodes' chunks for a full prepare of a v2 image (lazy::FillEntry),
  // from the request's serve settings (PrepareRequest::serve's peers,
  // peer_self, peer_timeout_ms; a lazily served entry's server opens its
  // own from serve.json). Unset, or nullptr: none. The command line opens
  // them with the peer client; the cache knows no network.
  std::function<StatusOr<std::shared_ptr<lazy::PeerChunks>>(const lazy::ServeConfig& serve)> open_peers;
};

struct DiskEntry {
  std::string key;
  std::string file;            // ROOT/disks/KEY/disk
  oci::Digest manifest;
  std::string path_in_image;   // /disk/NAME
  disk::Format format = disk::Format::kRaw;
  uint64_t virtual_size = 0;
  uint64_t bytes_on_disk = 0;  // allocated, holes excluded
  std::string source;          // the reference it was pulled as
  int64_t last_used = 0;       // seconds since the epoch
  std::vector<std::string> leased_by;  // VM names (from ls)
  bool lazy = false;           // no `disk` yet: served over NBD as chunks arrive
  bool served = false;         // its NBD server is running
};

enum class PullPolicy { kAlways, kIfNotPresent };
// KubeVirt's default: Always for ":latest" (or no tag), IfNotPresent else.
PullPolicy DefaultPullPolicy(const oci::Reference& ref);
StatusOr<PullPolicy> ParsePullPolicy(std::string_view s);

// Opens the store an image comes from (a registry repository, or a layout
// in tests and air-gapped nodes). Called only when the cache needs it.
using StoreOpener = std::function<StatusOr<std::unique_ptr<oci::Store>>(const oci::Reference&)>;

struct PrepareRequest {
  std::string vm;
  std::string image;      // reference as written in the VM spec
  std::string path;       // file inside /disk; empty: the only one
  std::optional<PullPolicy> policy;
  // Serve a v2 image's disk lazily over NBD instead of pulling it whole.
  // An image that cannot be served lazily (v1alpha, the disk layer not on
  // top, a source without range reads) is pulled whole
  // (Lease::full_pull_reason says why).
  bool lazy = false;
  // A lazy entry's serve.json: the caller gives registry, auth_file,
  // fill_rate, fill_delay and the peers; the cache fills in the layer,
  // diff_id and image.
  lazy::ServeConfig serve;
};

struct Lease {
  std::string vm, image, path_in_image;
  oci::Digest manifest;   // pinned for the VM's life
  std::string disk_key, base_file, overlay;
  disk::Format base_format = disk::Format::kRaw;
  std::string boot;       // the machine's boot (BootId) the overlay was made in
  // The base is the NBD export on this socket (a lazy entry); base_file is
  // then empty.
  std::string nbd_socket;
  // Not stored: why a lazy request was pulled whole ("" otherwise).
  std::string full_pull_reason;
};

class NodeCache {
 public:
  static StatusOr<std::unique_ptr<NodeCache>> Open(CacheOptions options);

  // Gives the VM its overlay on the image's disk, pulling it if needed. A
  // VM that already holds a lease gets the same lease back (its digest
  // stays pinned even if the tag has moved since); with a new, empty
  // overlay if the machine restarted since it was made (unsynced, it may
  // have been torn by a crash).
  StatusOr<Lease> Prepare(const PrepareRequest& req, const StoreOpener& open);
  // Starts the NBD server of a lease's lazy base again if it is not
  // running (no-op for a file base): before a domain on it starts.
  Status EnsureServing(const Lease& lease);
  // Ends the VM's lease and deletes its overlay. NotFound if none. The last
  // lease on a complete entry with a server stops the server.
  Status Release(const std::string& vm);
  StatusOr<std::optional<Lease>> GetLease(const std::string& vm);

  StatusOr<std::vector<DiskEntry>> List();
  struct GcResult {
    int removed = 0;
    uint64_t bytes_freed = 0, bytes_kept = 0;
  };
  // Stops the NBD servers of entries nobody leases. Removes unleased
  // disks, least recently used first, until the cache's
  // disks take at most `max_bytes` (0: remove every unleased disk); then
  // unreferenced manifests. First it removes what killed prepares and
  // releases left behind: work dirs and VM dirs without a lease, whose
  // lock no one holds.
  StatusOr<GcResult> Gc(uint64_t max_bytes);

  const std::string& root() const { return options_.root; }

 private:
  explicit NodeCache(CacheOptions options) : options_(std::move(options)) {}
  // `picked` gets the manifest when it was read from the source, so that
  // Fill does not fetch it again.
  StatusOr<oci::Digest> ResolveDigest(const oci::Reference& ref, PullPolicy policy,
                                      std::unique_ptr<oci::Store>& src, const StoreOpener& open,
                                      std::optional<oci::RawManifest>& picked);
  StatusOr<DiskEntry> EnsureDisk(const oci::Reference& ref, const oci::Digest& manifest,
                                 const PrepareRequest& req, const std::string& rel,
                                 std::unique_ptr<oci::Store>& src, const StoreOpener& open,
                                 const std::optional<oci::RawManifest>& picked, std::string& full_pull_reason);
  StatusOr<DiskEntry> Fill(oci::Store& src, const oci::Digest& manifest, const std::string& path,
                           const std::string& key, const std::string& source,
                           const std::optional<oci::RawManifest>& picked);
  // A lazy entry for the v2 image `digest` (lazy_entry.cc); Unsupported
  // when the image cannot be served lazily.
  StatusOr<DiskEntry> FillLazy(oci::Store& src, const oci::Reference& ref, const oci::Digest& digest,
                               const std::string& rel, const std::string& key, lazy::ServeConfig serve,
                               const std::optional<oci::RawManifest>& picked);
  // Deletes the entry `key` (its lock held): moved to ROOT/tmp, removed.
  Status RemoveEntry(const std::string& key);
  // Publishes ROOT/tmp/KEY.work as ROOT/disks/KEY with the image's manifest
  // and config kept in images_.
  Status Publish(const std::string& work, const std::string& key, const oci::RawManifest& raw,
                 const std::string& raw_config, const std::string& config_media_type);
  // Under the key's lock: the lease's NBD overlay and server for a lazy entry.
  Status AttachLazy(const DiskEntry& entry, Lease& lease);
  StatusOr<DiskEntry> ReadEntry(const std::string& key);
  // True when a lease names the disk `key` (with nbd_only, a lease on its
  // NBD export).
  bool Leased(const std::string& key, bool nbd_only);
  // Under the key's lock: stops the server of entry `key` when no lease
  // reads through it (and, with complete_only, when its disk is complete).
  Status StopUnleasedServer(const std::string& key, bool complete_only);
  void RemoveLeftovers();

  CacheOptions options_;
  std::unique_ptr<layout::Layout> images_;
};

// Refuses, before any Pod or VM is made, a disk that qemu (UID 107) cannot
// read: the owner and mode in the tar header of /disk/`path` (empty: the
// only file) of image `digest` (a manifest, or an index resolved for
// options.platform), as the layers leave it. The layers are read and
// verified in full but nothing is written (see DiskExtractor headers_only).
// Prepare makes the same check on the disk it extracts.
Status CheckDiskReadable(oci::Store& src, const oci::Digest& digest, const std::string& path,
                         const CacheOptions& options);

// VM names: what a Kubernetes object name may be, so that they are safe as
// one path component.
Status CheckVmName(const std::string& vm);
// Where the lease `vm` keeps its overlay: ROOT/vms/VM/overlay.qcow2.
std::string LeaseOverlayPath(const std::string& root, const std::string& vm);

}  // namespace regdisk::cache
