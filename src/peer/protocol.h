// The peer protocol, v1: how nodes ask each other for verified v2 chunks
// (docs/peers.md). Plain HTTP/1.1 over TCP. A chunk is named by the sha256
// of its disk bytes, the digest the layer's index lists for it, and the
// index is anchored in the manifest: so a client trusts no peer, verifies
// every byte it gets, and needs no TLS. A server serves only chunks it has
// verified itself, and names no disk, image or entry.
//
//   GET|HEAD /v1/chunks/sha256/<64 lowercase hex>
//       200  the chunk's disk bytes (uncompressed), Content-Length set,
//            Content-Type application/octet-stream
//       404  with kChunkStateHeader: kPending when an entry on this node
//            lists the digest but has not verified the chunk yet (the node
//            is loading that disk), kAbsent otherwise
//   POST /v1/have      (Content-Length required, at most kMaxHaveBody)
//       body: up to kMaxHaveDigests lines, each 64 lowercase hex and "\n"
//       200  text/plain: the lines of those the server would answer 200
//            for, in the order asked
//   GET /v1/health     200 "ok\n" (readiness)
//   anything else      400 (malformed), 404 (other paths), 405 (other
//                      methods), 413 (body too large), 431 (header too
//                      large), 503 (too many connections)
#pragma once

#include <cstddef>
#include <cstdint>

namespace regdisk::peer {

inline constexpr char kChunkPathPrefix[] = "/v1/chunks/sha256/";
inline constexpr char kHavePath[] = "/v1/have";
inline constexpr char kHealthPath[] = "/v1/health";
inline constexpr char kChunkStateHeader[] = "Regdisk-Chunk";
inline constexpr char kPending[] = "pending";
inline constexpr char kAbsent[] = "absent";

// The port the DaemonSet's peer server listens on by default.
inline constexpr uint16_t kDefaultPort = 7480;

inline constexpr size_t kDigestHexBytes = 64;
// Digests one /v1/have asks about at most: 1024 chunks is 1 GiB of disk at
// the default chunk size, and the body stays at 65 KiB.
inline constexpr size_t kMaxHaveDigests = 1024;
inline constexpr uint64_t kMaxHaveBody = kMaxHaveDigests * (kDigestHexBytes + 1);

}  // namespace regdisk::peer
