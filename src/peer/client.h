// The peer client: lazy::PeerChunks over peer/protocol.h (docs/peers.md,
// "Client").
//
// Ownership: each chunk has one owner among this node (`self`) and the
// peers not marked bad or down, by rendezvous (highest-random-weight)
// hashing of (peer name, chunk digest): every node listing the same peers
// computes the same owner, and a peer coming or going moves only its own
// share of chunks.
//
// Fetch asks up to kMaxAskedPerChunk peers (never self), in rendezvous
// order, so the owner first; each request has the per-peer timeout for
// connect and the whole transfer, and takes at most the entry's length.
// Bytes are returned only when layer::CheckChunk verifies them. A peer
// whose bytes do not verify (or that sends more than the chunk) is bad for
// kBadPeerTime; one that times out, refuses or breaks the connection is
// down for kDownPeerTime: neither is asked nor owns chunks in that time, so
// a hanging peer costs its timeout once, not once per chunk. A 404 with
// "Regdisk-Chunk: pending" makes the result `pending`.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "lazy/entry.h"
#include "lazy/peer_chunks.h"
#include "peer/peer_list.h"
#include "util/status.h"

namespace regdisk::peer {

// Per peer request, connect and whole transfer: a 1 MiB chunk over a
// cluster network takes milliseconds; a peer slower than this is better
// skipped for the registry.
inline constexpr std::chrono::milliseconds kDefaultPeerTimeout{2000};
// A peer that sent bytes that did not verify is not asked for this long: it
// is broken or hostile, and each of its answers costs a transfer.
inline constexpr std::chrono::seconds kBadPeerTime{60};
// A peer that timed out, refused or broke a connection is not asked for
// this long: long enough that a hanging peer costs its timeout once per
// period, short enough that a restarted one is used again soon.
inline constexpr std::chrono::seconds kDownPeerTime{10};
// Peers asked per Fetch at most: the owner and two more; past that the
// registry is the better place.
inline constexpr size_t kMaxAskedPerChunk = 3;

struct PeerOptions {
  std::string peers;  // the --peers spec (peer/peer_list.h); "" = no peers
  // --peer-self HOST:PORT: this node's own peer server, never asked, but
  // taking its share of ownership; "" = none (this node owns nothing while
  // any peer is up).
  std::string self;
  std::chrono::milliseconds timeout{kDefaultPeerTimeout};  // per peer request
  std::function<void(const std::string&)> log;              // one line, escaped
};

// Totals since OpenPeers, for logs, tests and the bench.
struct PeerCounters {
  uint64_t asked = 0;      // requests sent
  uint64_t hits = 0;       // chunks returned (verified)
  uint64_t bad_bytes = 0;  // answers whose bytes did not verify, or too long
  uint64_t timeouts = 0;   // requests that ran out of time
  uint64_t errors = 0;     // other failures: refused, broken, odd status
  uint64_t pending = 0;    // 404 pending answers
};

// The client's own interface beyond lazy::PeerChunks (tests, logs).
class PeerClient : public lazy::PeerChunks {
 public:
  virtual PeerCounters counters() const = 0;
  // The owner's name ("HOST:PORT", self's as given) of a digest among self
  // and the peers not bad or down; "" when there is neither.
  virtual std::string Owner(const layer::IndexEntry& e) = 0;
};

// Parses the spec now (a bad spec or self is InvalidArgument naming it) and
// reads its @files and DNS names (a failure there is a log line, not an
// error: the peers may come later); a Fetch reads them again at most every
// kPeerRefresh. No peers at all (an empty spec, or only `self` in a spec of
// plain HOST:PORT items) is nullptr: exactly the behaviour without peers.
// The result is a PeerClient (std::dynamic_pointer_cast for counters()).
StatusOr<std::shared_ptr<lazy::PeerChunks>> OpenPeers(const PeerOptions& options);
// OpenPeers with a lazy entry's serve.json fields (peers, peerSelf,
// peerTimeoutMs; 0 ms: kDefaultPeerTimeout).
StatusOr<std::shared_ptr<lazy::PeerChunks>> OpenServePeers(const lazy::ServeConfig& serve,
                                                          std::function<void(const std::string&)> log);

// The rendezvous weight of `peer` (its name) for a chunk digest.
uint64_t RendezvousWeight(std::string_view peer, const std::array<uint8_t, 32>& digest);

}  // namespace regdisk::peer
