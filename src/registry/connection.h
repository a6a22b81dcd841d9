// Internal to the registry package (and its own tests): a connection to
// one registry host: transport, the /v2/ ping, authorisation and retries,
// shared by the Repositories opened on it. The scheme and retry rules are
// in registry/registry.h.
//
// Thread-safety: a Registry is immutable after Connect except for its locked
// connection pool and token cache and its atomic streams_uploads flag, so any number of threads may use it (and
// Repositories opened on it) at once.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "registry/auth.h"
#include "registry/http.h"
#include "registry/registry.h"
#include "util/status.h"

namespace regdisk::registry {

// One HTTP request as the Repository code describes it.
struct Call {
  std::string method = "GET";
  std::string url;  // "/v2/..." on this registry, or an absolute URL (a Location)
  std::vector<std::string> headers;
  std::string_view body;
  // Instead of `body`: streamed (http::Request::body_source). Such a call
  // is sent once: no retry, and no second try with a fresh token on 401.
  std::function<std::optional<size_t>(char* buf, size_t len)> body_source;
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

  // Whether blob uploads may go as one streamed PATCH: Options::stream_uploads,
  // until a streamed PATCH to this host was refused (a proxy in front of it
  // that wants a Content-Length); then chunked PATCHes for every later blob.
  bool streams_uploads() const { return options_.stream_uploads && !stream_refused_; }
  void RefuseStreamedUploads() { stream_refused_ = true; }

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
  std::atomic<bool> stream_refused_{false};
};

}  // namespace regdisk::registry
