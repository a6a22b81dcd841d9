// Filling a lazy entry completely and making it an ordinary cache entry.
//
// FillEntry is what a non-lazy prepare of a v2 image uses (so delta pulls
// work there too) and what the serving process's background fill ends
// with (through ChunkStore::FillMissing and ChunkStore::Promote).
//
// The entry ROOT/disks/KEY must hold meta.json (with "format" and
// "virtualSize"), serve.json and index (lazy/entry.h); the node cache
// writes them.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "lazy/peer_chunks.h"
#include "oci/store.h"
#include "util/status.h"

namespace regdisk::lazy {

struct FillOptions {
  int parallel = 4;         // chunks loaded at once (registry connections)
  bool key_locked = false;  // the caller holds ROOT/locks/disk-KEY.lock
  std::function<void(const std::string&)> log;
  // Blob bytes fetched from `source`, as they arrive (download progress);
  // called from several threads at once.
  std::function<void(uint64_t)> on_bytes;
  // Other nodes' verified chunks (lazy/chunk_store.h's policy); nullptr:
  // none.
  std::shared_ptr<PeerChunks> peers;
};

// Opens the entry's chunk store (lazy/chunk_store.h) and loads every
// missing chunk: from disk.partial, donors and peers first, then by range
// reads of the layer blob from `source` (the store serve.json's image
// names; the caller opens it, e.g. with resolve::OpenRegistry). When
// nothing at all is local and no peer can help (none is configured, or
// this node owns every chunk: no other peer is up) it streams the whole
// blob once instead, and then also checks the layer digest, the diff_id
// and that the tar agrees with the index (layer::VerifyLayer), keeping
// each chunk as it is verified. With peers that may hold chunks it loads
// chunk by chunk instead, as a lazy entry's fill does: a node among many
// then takes its share from the registry and the rest from the others, and
// what proves the disk is what proves a lazily served one (every chunk
// against the index, which the manifest anchors, then Promote's checks).
// Then Promote. A promoted entry is left as it is (OK).
Status FillEntry(const std::string& root, const std::string& key, oci::Store& source,
                 const FillOptions& options = {});

// Under the key's flock (unless `key_locked`): every data chunk present
// and verified (re-hashed from disk.partial, as nothing else is local here),
// fsync, disk::Inspect with meta.json's format and its virtual size,
// disk::CrossCheck (qemu-img), chmod 0444, rename disk.partial -> disk, then
// meta.json rewritten without "lazy" (atomically, other keys kept) and the
// chunk map removed. OK when `disk` exists already.
Status Promote(const std::string& root, const std::string& key, bool key_locked = false);

// The step Promote and ChunkStore::Promote share: the checks and renames
// above, on ENTRY_DIR/disk.partial open as `fd`, every chunk verified.
Status PromoteVerified(const std::string& entry_dir, int fd);

}  // namespace regdisk::lazy
