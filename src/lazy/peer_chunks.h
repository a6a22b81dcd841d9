// Chunks other nodes hold: the chunk store's third place to look, after
// disk.partial and donors, before the registry (lazy/chunk_store.h).
// peer::Client implements it over HTTP (peer/client.h, peer/protocol.h);
// this module knows nothing of the network.
#pragma once

#include <optional>
#include <string>

#include "layer/disk_index.h"

namespace regdisk::lazy {

struct PeerResult {
  // The chunk's bytes, verified against its sha256 by the implementation.
  std::optional<std::string> bytes;
  // No bytes, but a peer asked holds an entry listing the chunk that it has
  // not verified yet (peer/protocol.h's kPending): that node is loading
  // the disk, so asking again later may succeed.
  bool pending = false;
};

class PeerChunks {
 public:
  virtual ~PeerChunks() = default;
  // Asks peers for data chunk `e`: its owner first, then a few others (in
  // rendezvous order on the digest), each within the per-peer timeout. A
  // peer whose bytes do not verify, that times out or refuses, is marked
  // bad for a while and not asked in that time. Never fails: no peer, or
  // none holding it, is a result without bytes. Thread-safe.
  virtual PeerResult Fetch(const layer::IndexEntry& e) = 0;
  // True when this node should load `e` from the registry itself without
  // waiting for peers: it is `e`'s owner among itself and the peers not
  // marked bad (rendezvous hashing on the digest), or there is no such
  // peer. Thread-safe; no I/O.
  virtual bool OwnsChunk(const layer::IndexEntry& e) = 0;
};

}  // namespace regdisk::lazy
