// The registry client's public face (Distribution API v2): the Options a
// connection to a registry host takes, Login and Logout. Repositories are
// opened with registry/repository.h; the connection itself (requests,
// retries, tokens) is internal to this package (registry/connection.h).
//
// Scheme: https is tried first, always. Plain http is tried after it when
// https fails for want of TLS (the handshake or the connection failed, never
// a certificate error) AND either tls_verify is false or the host is a
// loopback address (localhost, 127.0.0.0/8, ::1): docker's rule for
// localhost and skopeo's --tls-verify=false. A server that speaks TLS is
// never downgraded, and a non-loopback host is never reached over plain
// http while TLS is verified.
//
// Retries: network failures and HTTP 429/500/502/503/504 are retried up to
// Options::retry_times times with exponential backoff from retry_delay
// (honouring Retry-After, up to a minute). Other 4xx answers are not
// retried, except a 401 once after refreshing the token.
//
// Errors name the registry, the repository and the cause in one line;
// passwords and tokens are scrubbed from every message.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "util/status.h"

namespace regdisk::registry {

struct Options {
  // "user:password"; empty: look in the auth files (see auth_file.h).
  std::string credentials;
  // false: no certificate checks, and plain http allowed for any host.
  bool tls_verify = true;
  // Extra CA certificates: every *.crt in this directory. Empty:
  // /etc/containers/certs.d/HOST when it exists (as skopeo does).
  std::string cert_dir;
  int retry_times = 3;  // skopeo's --retry-times default
  std::chrono::milliseconds retry_delay{500};
  std::chrono::seconds connect_timeout{30};
  std::chrono::seconds stall_timeout{60};
  // Uploads are sent in chunks of this size, the most a BlobWriter buffers;
  // a blob no larger than this goes in a single PUT.
  size_t chunk_size = 8 << 20;
  // A larger blob goes as one streamed PATCH (chunked transfer encoding)
  // rather than a PATCH per chunk (blob_writer.cc says why, and when it
  // falls back). false: a PATCH per chunk.
  bool stream_uploads = true;
  // Connections a blob download uses at once, as HTTP Range requests (a
  // cloud blob store caps each one); 1: one stream. At most kMaxParallel.
  int parallel = 4;
};

// The most connections one download may use: beyond this a registry sees
// one client as many, and the memory window (see ranged_reader.cc) grows.
inline constexpr int kMaxParallel = 16;

// A connection to one registry host (registry/connection.h).
class Registry;

// Verifies `user`/`password` against the registry at `host`, then stores them
// in the auth file (AuthFileForWriting()). Options::credentials is ignored.
Status Login(const std::string& host, const std::string& user, const std::string& password,
             const Options& options);
// Removes the host's entry from that file; NotFound when there is none.
Status Logout(const std::string& host);

}  // namespace regdisk::registry
