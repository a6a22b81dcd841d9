// HTTP over libcurl, as the registry client needs it: one request at a time
// per connection, bodies in memory for requests and small responses, and a
// bounded streaming reader for blobs.
//
// Connections: a Client keeps a small pool of idle connections (a libcurl
// easy handle driven through its own multi handle, whose connection cache
// keeps sockets and TLS sessions alive between requests), so consecutive
// requests to a host reuse one connection. Every request or Stream takes a
// connection from the pool for its whole life and gives it back at the end.
//
// Thread-safety: Client is thread-safe (the pool is locked); a Stream is used
// by one thread at a time. A Client must outlive its Streams.
//
// Transport failures (no HTTP answer) are Status codes, with only the cause
// as message ("Connection refused"); callers add the context:
//   kUnavailable      no answer or a broken connection: a retry may help
//   kUnsupported      the TLS handshake failed (e.g. the peer speaks plain HTTP)
//   kUnauthorized     the peer's TLS certificate did not verify
//   kInvalidArgument  a 2xx body longer than Request::max_body; or, before
//                     anything is sent, a URL or header line holding a
//                     control character (headers carry outside data:
//                     tokens, upload URLs from Location; a CR/LF in them
//                     would add headers of the peer's choosing)
//   kInternal         anything else libcurl reports
// An HTTP error status is not a transport failure: it comes back as a
// Response for the caller to judge.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/status.h"

namespace regdisk::registry::http {

struct ClientOptions {
  // false: no certificate or host name checks (skopeo --tls-verify=false).
  bool tls_verify = true;
  // Extra trusted CA certificates (PEM), used with the system ones.
  std::string ca_pem;
  std::chrono::seconds connect_timeout{30};
  // A transfer that moves no byte for this long (waiting for an answer
  // included), or slower than 1 KiB/s for about this long, is aborted
  // (kUnavailable).
  std::chrono::seconds stall_timeout{60};
};

struct Request {
  std::string method = "GET";  // GET, HEAD, PUT, PATCH, POST, DELETE
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string_view body;             // for PUT, PATCH, POST; must outlive the call
  // Instead of `body`: a body of unknown length, sent with chunked transfer
  // encoding as this produces it (called on the caller's thread, inside
  // Do): up to `len` bytes into `buf`, 0 at the end, nullopt to abort
  // (kInternal). It may block; the stall timer restarts whenever it
  // returns bytes. It cannot be replayed: when a reused connection turns
  // out dead after some of it was taken, the request fails (kUnavailable).
  std::function<std::optional<size_t>(char* buf, size_t len)> body_source;
  bool follow_redirects = false;     // only to http(s); to http only from http or without tls_verify
  size_t max_body = 64 << 10;        // for Do(); error bodies are cut here instead
  // When set: the whole request (connect, send, the whole response) within
  // this time, else kUnavailable; for callers that need a bound finer than
  // ClientOptions' seconds (the peer client's per-peer timeout).
  std::chrono::milliseconds total_timeout{0};
  // true: straight to the host, never through a proxy the environment names
  // (http_proxy...); for hosts on the cluster network, which an egress proxy
  // does not reach.
  bool direct = false;
};

struct Response {
  long status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // final response; names lowercase
  std::string body;
  std::string url;  // after redirects

  // First value of a header (name in lowercase), or "".
  std::string Header(std::string_view name) const;
  std::vector<std::string> Headers(std::string_view name) const;
};

class Exchange;

// A response body read as it arrives; at most a few MiB are buffered
// (libcurl is paused while the reader is behind).
class Stream {
 public:
  explicit Stream(std::unique_ptr<Exchange> exchange);
  ~Stream();
  const Response& head() const;  // status, headers, url (body only for non-2xx)
  // Up to `len` bytes; 0 once the whole body was read.
  StatusOr<size_t> Read(void* buf, size_t len);

 private:
  std::unique_ptr<Exchange> exchange_;
};

struct Connection;

class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const ClientOptions& options() const { return options_; }
  // Sends the request and reads the whole response.
  StatusOr<Response> Do(const Request& request);
  // Sends the request and returns once the final response's headers are in.
  // For a non-2xx status the (cut) body is read as well, into head().body.
  StatusOr<std::unique_ptr<Stream>> Open(const Request& request);

  // For Exchange: the pool.
  std::unique_ptr<Connection> Acquire();
  void Release(std::unique_ptr<Connection> c);
  const std::string& ca_bundle() const { return ca_bundle_; }

 private:
  ClientOptions options_;
  std::string ca_bundle_;  // system CAs + options_.ca_pem, when ca_pem is set
  std::mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_;
};

// URL helpers. HostOf("https://a.b:5000/v2/") is "a.b:5000".
std::string HostOf(std::string_view url);
// localhost, 127.0.0.0/8 or ::1, with or without a port ("[::1]:5000").
bool IsLoopback(std::string_view host);
// Percent-encodes everything but RFC 3986 unreserved characters.
std::string Escape(std::string_view s);

}  // namespace regdisk::registry::http
