// The peer server: serves this node's verified v2 chunks (peer/holdings.h)
// to other nodes over plain HTTP/1.1 (peer/protocol.h, peer/request.h),
// read-only. One thread per connection, at most max_connections at once
// (the next gets 503 and is closed); keep-alive up to
// kMaxRequestsPerConnection requests. A connection that sends no request
// within idle_timeout, or takes longer than request_timeout to send one
// (slowloris), is closed; so is one that does not take a response within
// kSendTimeout. Every refused request kind is logged, at most one line per
// kind per kRefusalLogInterval, with the client's data escaped.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "peer/holdings.h"
#include "util/status.h"

namespace regdisk::peer {

// Connections at once: a node's store asks a few chunks at a time (its
// `parallel`), so 128 serves 30 or more busy peers; each connection's
// thread holds at most one chunk (128 MiB in all at the default 1 MiB chunk
// size) and its request buffer (under 90 KiB).
inline constexpr size_t kMaxConnections = 128;
// A connection with no request started within this long is closed: a
// client's idle keep-alive connection must not hold a thread for long.
inline constexpr std::chrono::milliseconds kIdleTimeout{10'000};
// A request (head and body, at most 73 KiB) must arrive within this long of
// its first byte: a client that sends a byte now and then (slowloris) is
// dropped.
inline constexpr std::chrono::milliseconds kRequestTimeout{10'000};
// A response must be taken within this long: a 16 MiB chunk (the largest)
// at 300 KiB/s.
inline constexpr std::chrono::milliseconds kSendTimeout{60'000};
// Requests one connection may make: keeps a client from pinning one thread
// forever while letting a store's connection pool reuse it a long time.
inline constexpr size_t kMaxRequestsPerConnection = 1000;
// At most one log line per kind of refused request in this time (a
// scanner must not flood the log); the next says how many were not logged.
inline constexpr std::chrono::seconds kRefusalLogInterval{60};

struct ServerOptions {
  std::string root;    // the node state root (ROOT/disks/*)
  std::string listen;  // HOST:PORT, HOST an IPv4 literal or [IPv6 literal]; port 0: a free one
  size_t max_connections = kMaxConnections;
  std::chrono::milliseconds idle_timeout = kIdleTimeout;
  std::chrono::milliseconds request_timeout = kRequestTimeout;
  std::chrono::milliseconds rescan_interval = kRescanInterval;
  std::function<void(const std::string&)> log;  // one line each; thread-safe
};

class Server {
 public:
  // Listens on options.listen and serves in background threads. Fails
  // (InvalidArgument: a bad HOST:PORT; kIo: the address is in use...)
  // before serving anything.
  static StatusOr<std::unique_ptr<Server>> Start(ServerOptions options);
  ~Server();  // Stop()

  uint16_t port() const { return port_; }  // the port listened on
  const Holdings& holdings() const { return holdings_; }
  // Stops listening, closes every connection (requests being answered are
  // cut off) and joins every thread. Idempotent.
  void Stop();

 private:
  struct Connection {
    int fd;
    std::string peer;  // the client's address, for the log
    std::thread thread;
    std::atomic<bool> done{false};
  };
  Server(ServerOptions options) : options_(std::move(options)), holdings_(options_.root, options_.rescan_interval, options_.log) {}
  void AcceptLoop();
  // Joins the connection threads that have finished.
  void Reap();
  void Serve(Connection& c);
  // A refused request of `kind` from `peer`: logged, rate-limited by kind.
  void Refused(const std::string& kind, const std::string& peer, const std::string& why);

  ServerOptions options_;
  Holdings holdings_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};  // a pipe: Stop wakes the accept loop
  uint16_t port_ = 0;
  std::thread acceptor_;
  std::atomic<bool> stopping_{false};
  std::mutex stop_mu_;  // Stop

  std::mutex mu_;  // connections_
  std::list<Connection> connections_;

  std::mutex log_mu_;
  struct LogState {
    std::chrono::steady_clock::time_point last;
    uint64_t unlogged = 0;
  };
  std::map<std::string, LogState> logged_;
};

}  // namespace regdisk::peer
