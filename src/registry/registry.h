// A connection to one registry host (Distribution API v2): transport, the
// /v2/ ping, authorisation and retries, shared by the Repositories opened on
// it. Also Login and Logout.
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
//
// Thread-safety: a Registry is immutable after Connect except for its locked
// connection pool and token cache, so any number of threads may use it (and
// Repositories opened on it) at once.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "registry/auth.h"
#include "registry/http.h"
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
  // Connections a blob download uses at once, as HTTP Range requests (a
  // cloud blob store caps each one); 1: one stream. At most kMaxParallel.
  int parallel = 4;
};

// The most connections one download may use: beyond this a registry sees
// one client as many, and the memory window (see ranged_reader.cc) grows.
inline constexpr int kMaxParallel = 16;

// One HTTP request as the Repository code describes it.
struct Call {
  std::string method = "GET";
  std::string url;  // "/v2/..." on this registry, or an absolute URL (a Location)
  std::vector<std::string> headers;
  std::string_view body;
  std::vector<std::string> scopes;  // token scopes, "repository:NAME:pull"
  bool follow_redirects = false;
  size_t max_body = 64 << 10;
  bool retry = true;       // false for requests that must not be repeated blindly
  std::string repository;  // for error messages
  std::string what;        // for error messages: `manifest "v1"`, `blob sha256:...`
};

class Registry {
 public:
  // Resolves credentials and CA certificates for `host` ("quay.io",
  // "127.0.0.1:5000"; "docker.io" is served by registry-1.docker.io) and
  // pings it. Fails when the registry cannot be reached or is no registry.
  static StatusOr<std::shared_ptr<Registry>> Connect(const std::string& host, const Options& options);
  // The same with these credentials (nullopt: anonymous), ignoring
  // Options::credentials and the auth files.
  static StatusOr<std::shared_ptr<Registry>> ConnectAs(const std::string& host, const Options& options,
                                                       std::optional<Credentials> credentials);

  const std::string& host() const { return host_; }
  const std::string& base_url() const { return base_url_; }  // "https://quay.io"
  const Options& options() const { return options_; }

  // Sends a call; returns whatever HTTP answer came last (after retries and
  // token refresh), or a transport error naming the registry.
  StatusOr<http::Response> Do(const Call& call);
  // The same as a stream (for blob bodies); headers are in on return.
  StatusOr<std::unique_ptr<http::Stream>> Open(const Call& call);

  // The Status for an answer the caller did not expect.
  Status ResponseError(const Call& call, const http::Response& response);
  // A transport failure (http.h codes) as a message naming the registry.
  Status TransportError(const Call& call, const Status& cause);
  // `status` with every secret this registry knows replaced by "***".
  Status Scrub(const Status& status) const;
  // An absolute URL for a Location header value.
  std::string Resolve(const std::string& location) const;
  // Sleeps before retry number `attempt` (0-based), honouring Retry-After.
  void Backoff(int attempt, const http::Response* response) const;

  // Checks that the credentials given are accepted (for Login).
  Status VerifyCredentials();

 private:
  Registry(std::string host, std::string endpoint, Options options,
           std::optional<Credentials> credentials, std::string ca_pem);
  Status Ping();
  template <typename T, typename Send, typename Head>
  StatusOr<T> Send(const Call& call, Send send, Head head);

  std::string host_, endpoint_, base_url_;
  Options options_;
  http::Client client_;
  Authenticator auth_;
};

// Verifies `user`/`password` against the registry at `host`, then stores them
// in the auth file (AuthFileForWriting()). Options::credentials is ignored.
Status Login(const std::string& host, const std::string& user, const std::string& password,
             const Options& options);
// Removes the host's entry from that file; NotFound when there is none.
Status Logout(const std::string& host);

}  // namespace regdisk::registry
