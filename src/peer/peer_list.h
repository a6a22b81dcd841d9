// The --peers spec: which nodes to ask for chunks (docs/peers.md, "Client").
//
//   SPEC  = ITEM *("," ITEM)
//   ITEM  = HOST:PORT          an IPv4 literal, [IPv6]:PORT or a DNS name
//         | @/abs/path         a file: one HOST:PORT a line, "#" comments
//         | dns:NAME:PORT      NAME's A/AAAA records, each at PORT
//         | srv:NAME           NAME's SRV records (targets resolved to A/AAAA)
//
// Everything here is outside data (a flag, a file anyone with write access
// to it controls, DNS answers): each is bounded by a named limit below, and
// a bad one is a one-line error naming the item, quoted. Peers are named by
// their canonical "HOST:PORT" (host lowercased, IPv6 in brackets): the name
// that rendezvous hashing uses, the same on every node that lists the peer
// the same way. Addresses that come from DNS are numeric ("10.0.0.7:7480").
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace regdisk::peer {

// A flag's length: 256 peers of "255.255.255.255:65535," fit in 6 KiB; a
// longer spec belongs in an @file.
inline constexpr size_t kMaxPeerSpec = 8 << 10;
// Items in one spec: a list longer than this is a file's job.
inline constexpr size_t kMaxSpecItems = 256;
// Peers in total, after files and DNS: each Fetch ranks them all, and a
// cluster node has no use for more (only kMaxAskedPerChunk are asked).
inline constexpr size_t kMaxPeers = 256;
// A peer file: kMaxPeers lines of a long DNS name and port, with comments.
inline constexpr uint64_t kMaxPeerFileBytes = 128 << 10;
inline constexpr size_t kMaxPeerFileLines = 4096;
// A host name (RFC 1035: 253 characters in text form, labels of 63).
inline constexpr size_t kMaxHostBytes = 253;
inline constexpr size_t kMaxLabelBytes = 63;
// Addresses taken from one getaddrinfo answer, and SRV records from one
// answer: both at most the peers there can be.
inline constexpr size_t kMaxDnsAnswers = kMaxPeers;
// A DNS answer read for srv: (the largest a TCP DNS message can be).
inline constexpr size_t kMaxDnsMessage = 65535;
// Files and DNS are read again at most this often: a headless Service's
// records follow pods coming and going within about this time.
inline constexpr std::chrono::seconds kPeerRefresh{30};

struct PeerAddr {
  std::string host;  // lowercase; an IPv6 literal without brackets
  uint16_t port = 0;
  // "host:port", or "[v6]:port".
  std::string Name() const;
  auto operator<=>(const PeerAddr&) const = default;
};

// HOST:PORT (IPv4 literal, [IPv6]:PORT or a DNS name; port 1-65535).
StatusOr<PeerAddr> ParsePeerAddr(std::string_view s);

struct SpecItem {
  enum class Kind { kPeer, kFile, kDns, kSrv };
  Kind kind = Kind::kPeer;
  PeerAddr addr;     // kPeer: the peer; kDns: NAME and PORT
  std::string name;  // kFile: the absolute path; kSrv: the record's name
  std::string text;  // the item as written, for messages
};

// The spec's items, syntax only (no file read, no DNS). "" is no items.
StatusOr<std::vector<SpecItem>> ParsePeerSpec(std::string_view spec);
// For the CLI: ParsePeerSpec's verdict alone.
Status CheckPeerSpec(std::string_view spec);

// A peer file's contents: one HOST:PORT a line, blank lines and "#" to the
// end of a line ignored. An error names the line.
StatusOr<std::vector<PeerAddr>> ParsePeerFile(std::string_view text);

struct SrvRecord {
  std::string target;  // lowercase, without the trailing dot
  uint16_t port = 0;
};
// The SRV records of a DNS answer message (as res_query returns it): at
// most kMaxDnsAnswers; records of other types are skipped. A malformed
// message or a bad target name is an error.
StatusOr<std::vector<SrvRecord>> ParseSrvAnswer(std::string_view message);

// The peers a spec names now: static items as written, @files read, dns:
// and srv: resolved. An item that cannot be read or resolved adds a line to
// `errors` and keeps what it gave last time (`last`, one slot per item, kept
// by the caller; resized here). Duplicates are dropped; at most kMaxPeers
// (beyond is an error line too). Does I/O: DNS may take its resolver's
// timeouts.
std::vector<PeerAddr> ResolvePeers(const std::vector<SpecItem>& items,
                                   std::vector<std::vector<PeerAddr>>& last,
                                   std::vector<std::string>& errors);

}  // namespace regdisk::peer
