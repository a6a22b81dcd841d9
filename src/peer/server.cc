#include "peer/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "layer/disk_index.h"
#include "peer/protocol.h"
#include "peer/request.h"

namespace regdisk::peer {
namespace {

using Clock = std::chrono::steady_clock;

// Bytes read from a socket at a time.
constexpr size_t kReadBytes = 16 << 10;
// How long a 503 may take to send before its connection is closed anyway:
// the accept loop sends it and must not wait on a client.
constexpr std::chrono::milliseconds kRefusalSendTimeout{1000};
// The pause after accept failed for want of descriptors or memory: they
// come back as connections end, and the loop must not spin meanwhile.
constexpr std::chrono::milliseconds kAcceptErrorPause{100};

StatusOr<sockaddr_storage> ParseListen(const std::string& listen, socklen_t* len) {
  auto bad = [&](const std::string& why) { return InvalidArgument("--listen " + Quote(listen) + ": " + why); };
  std::string host, port;
  if (!listen.empty() && listen[0] == '[') {
    size_t close = listen.find("]:");
    if (close == std::string::npos) return bad("want [IPv6]:PORT");
    host = listen.substr(1, close - 1);
    port = listen.substr(close + 2);
  } else {
    size_t colon = listen.find(':');
    if (colon == std::string::npos || listen.find(':', colon + 1) != std::string::npos) {
      return bad("want IPv4:PORT or [IPv6]:PORT");
    }
    host = listen.substr(0, colon);
    port = listen.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) > 65535) {
    return bad("the port must be a number from 0 to 65535");
  }
  sockaddr_storage addr{};
  if (auto* v4 = reinterpret_cast<sockaddr_in*>(&addr); inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1 &&
                                                        listen[0] != '[') {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(std::stoul(port)));
    *len = sizeof(sockaddr_in);
  } else if (auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
             listen[0] == '[' && inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(std::stoul(port)));
    *len = sizeof(sockaddr_in6);
  } else {
    return bad("the host must be an IP address literal (0.0.0.0 or [::] for all)");
  }
  return addr;
}

std::string PeerName(const sockaddr_storage& addr) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (addr.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&addr)->sin_addr, text, sizeof(text));
    return std::string(text) + ":" + std::to_string(ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port));
  }
  inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_addr, text, sizeof(text));
  return "[" + std::string(text) + "]:" + std::to_string(ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port));
}

int MillisLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

// Sends `head` then `body` (one sendmsg, no copy of the body) by
// `deadline`; false when the client is gone or too slow.
bool SendAll(int fd, std::string_view head, std::string_view body, Clock::time_point deadline) {
  while (!head.empty() || !body.empty()) {
    iovec iov[2] = {{const_cast<char*>(head.data()), head.size()}, {const_cast<char*>(body.data()), body.size()}};
    msghdr msg{};
    msg.msg_iov = head.empty() ? iov + 1 : iov;
    msg.msg_iovlen = head.empty() ? 1 : 2;
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      auto sent = static_cast<size_t>(n);
      size_t from_head = std::min(sent, head.size());
      head.remove_prefix(from_head);
      body.remove_prefix(sent - from_head);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, MillisLeft(deadline)) <= 0 || (p.revents & (POLLERR | POLLHUP))) return false;
  }
  return true;
}

struct Response {
  int status = 200;
  std::string content_type = "text/plain";
  std::string extra;  // more header lines, each with its CRLF
  std::string body;
};

std::string Head(const Response& r, bool keep_alive) {
  return "HTTP/1.1 " + std::to_string(r.status) + " " + ReasonPhrase(r.status) + "\r\nContent-Type: " +
         r.content_type + "\r\nContent-Length: " + std::to_string(r.body.size()) + "\r\n" + r.extra +
         "Connection: " + (keep_alive ? "keep-alive" : "close") + "\r\n\r\n";
}

Response Plain(int status, std::string extra = "") {
  return Response{status, "text/plain", std::move(extra), std::string(ReasonPhrase(status)) + "\n"};
}

}  // namespace

StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options) {
  socklen_t len = 0;
  ASSIGN_OR_RETURN(sockaddr_storage addr, ParseListen(options.listen, &len));
  std::unique_ptr<Server> s(new Server(std::move(options)));
  s->listen_fd_ = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s->listen_fd_ < 0) return IoError("socket", errno);
  int one = 1;
  ::setsockopt(s->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const std::string where = "listening on " + Quote(s->options_.listen);
  if (::bind(s->listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0) return IoError(where, errno);
  if (::listen(s->listen_fd_, SOMAXCONN) != 0) return IoError(where, errno);
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof(bound);
  if (::getsockname(s->listen_fd_, reinterpret_cast<sockaddr*>(&bound), &bound_len) != 0) {
    return IoError(where, errno);
  }
  s->port_ = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                              : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  if (::pipe2(s->wake_, O_CLOEXEC) != 0) return IoError("pipe", errno);
  s->acceptor_ = std::thread([srv = s.get()] { srv->AcceptLoop(); });
  return s;
}

Server::~Server() {
  Stop();
  for (int fd : {listen_fd_, wake_[0], wake_[1]}) {
    if (fd >= 0) ::close(fd);
  }
}

void Server::Stop() {
  std::lock_guard<std::mutex> stopping(stop_mu_);
  if (!acceptor_.joinable()) return;
  stopping_ = true;
  char b = 0;
  if (::write(wake_[1], &b, 1) < 0) {
    // The pipe is empty and open: cannot fail. The loop also polls stopping_.
  }
  acceptor_.join();
  ::close(listen_fd_);  // new clients are refused at once
  listen_fd_ = -1;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (Connection& c : connections_) ::shutdown(c.fd, SHUT_RDWR);
  }
  // The threads end once their socket is shut down. Only the acceptor
  // (ended) adds to or erases from the list, so it is stable here.
  for (Connection& c : connections_) c.thread.join();
  for (Connection& c : connections_) ::close(c.fd);
  connections_.clear();
}

void Server::Reap() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (it->done) {
      it->thread.join();
      ::close(it->fd);
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

void Server::AcceptLoop() {
  while (!stopping_) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    // Wakes at least once a second to join finished connection threads.
    int n = ::poll(fds, 2, 1000);
    Reap();
    if (n <= 0 || stopping_ || (fds[1].revents & POLLIN)) continue;
    if (!(fds[0].revents & POLLIN)) continue;
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_CLOEXEC);
    if (fd < 0) {
      // The client left (try the next), or the process is out of
      // descriptors or memory: wait a little rather than spin on it.
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        ::poll(nullptr, 0, static_cast<int>(kAcceptErrorPause.count()));
      }
      continue;
    }
    std::string peer = PeerName(addr);
    // 503, sent from here: best effort, within kRefusalSendTimeout.
    auto busy = [&](const std::string& why) {
      Refused("503", peer, why);
      const Response r = Plain(503);
      SendAll(fd, Head(r, false), r.body, Clock::now() + kRefusalSendTimeout);
      ::close(fd);
    };
    std::lock_guard<std::mutex> lock(mu_);
    if (connections_.size() >= options_.max_connections) {
      busy("more than " + std::to_string(options_.max_connections) + " connections at once");
      continue;
    }
    Connection& c = connections_.emplace_back();
    c.fd = fd;
    c.peer = peer;
    try {
      c.thread = std::thread([this, &c] {
        Serve(c);
        ::shutdown(c.fd, SHUT_RDWR);
        c.done = true;
      });
    } catch (const std::system_error& e) {  // no thread to be had (a process or memory limit)
      connections_.pop_back();
      busy(std::string("no thread for the connection: ") + e.what());
    }
  }
}

void Server::Refused(const std::string& kind, const std::string& peer, const std::string& why) {
  if (!options_.log) return;
  std::lock_guard<std::mutex> lock(log_mu_);
  auto now = Clock::now();
  auto [it, fresh] = logged_.try_emplace(kind);
  if (!fresh && now - it->second.last < kRefusalLogInterval) {
    ++it->second.unlogged;
    return;
  }
  std::string more = it->second.unlogged ? " (and " + std::to_string(it->second.unlogged) + " more like it)" : "";
  it->second = {now, 0};
  options_.log("refused a request (" + kind + ") from " + peer + ": " + OneLine(why, 300) + more);
}

void Server::Serve(Connection& c) {
  std::string buf;
  char chunk[kReadBytes];
  for (size_t served = 0; !stopping_;) {
    // One request: the idle timeout until its first byte, then the
    // request timeout for all of it.
    Clock::time_point deadline = Clock::now() + (buf.empty() ? options_.idle_timeout : options_.request_timeout);
    bool started = !buf.empty(), continued = false;
    ParseResult r;
    for (;;) {
      r = ParseRequest(buf);
      if (r.kind != ParseResult::Kind::kNeedMore) break;
      if (r.expect_continue && !continued) {
        continued = true;
        if (!SendAll(c.fd, "HTTP/1.1 100 Continue\r\n\r\n", "", Clock::now() + kSendTimeout)) return;
      }
      pollfd p{c.fd, POLLIN, 0};
      if (::poll(&p, 1, MillisLeft(deadline)) <= 0) {
        if (started) Refused("timeout", c.peer, "a request not complete within its time");
        return;
      }
      ssize_t n = ::recv(c.fd, chunk, sizeof(chunk), MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) return;  // closed (or shut down by Stop)
      buf.append(chunk, static_cast<size_t>(n));
      if (!started) {
        started = true;
        deadline = Clock::now() + options_.request_timeout;
      }
    }
    if (r.kind == ParseResult::Kind::kError) {
      Refused(std::to_string(r.status), c.peer, r.reason);
      const Response refusal = Plain(r.status, r.status == 405 ? "Allow: GET, HEAD, POST\r\n" : "");
      SendAll(c.fd, Head(refusal, false), refusal.body, Clock::now() + kSendTimeout);
      return;
    }
    buf.erase(0, r.consumed);
    const Request& req = r.request;
    ++served;
    const bool keep = req.keep_alive && served < kMaxRequestsPerConnection && !stopping_;

    Response resp;
    const Route route = RouteTarget(req.target);
    const bool get = req.method == Method::kGet || req.method == Method::kHead;
    if (route.kind == Route::Kind::kNone) {
      Refused("404 path", c.peer, "a path outside the protocol: " + Quote(req.target, 120));
      resp = Plain(404);
    } else if (route.kind == Route::Kind::kHave ? req.method != Method::kPost : !get) {
      Refused("405", c.peer, "a method the path does not take, on " + Quote(req.target, 120));
      resp = Plain(405, route.kind == Route::Kind::kHave ? "Allow: POST\r\n" : "Allow: GET, HEAD\r\n");
    } else if (route.kind == Route::Kind::kHealth) {
      resp = Response{200, "text/plain", "", "ok\n"};
    } else if (route.kind == Route::Kind::kChunk) {
      ChunkRead chunk_read = holdings_.Read(route.digest);
      if (chunk_read.state == ChunkState::kHeld) {
        resp = Response{200, "application/octet-stream", "", std::move(chunk_read.bytes)};
      } else {
        resp = Plain(404, std::string(kChunkStateHeader) + ": " +
                              (chunk_read.state == ChunkState::kPending ? kPending : kAbsent) + "\r\n");
      }
    } else {
      auto digests = ParseHaveBody(req.body);
      if (!digests.ok()) {
        Refused("400 have", c.peer, digests.status().message());
        resp = Plain(400);
      } else {
        std::vector<bool> have = holdings_.Have(*digests);
        resp = Response{200, "text/plain", "", ""};
        for (size_t i = 0; i < have.size(); ++i) {
          if (have[i]) resp.body += layer::ShaHex((*digests)[i]) + "\n";
        }
      }
    }
    const std::string_view body = req.method == Method::kHead ? std::string_view() : resp.body;
    if (!SendAll(c.fd, Head(resp, keep), body, Clock::now() + kSendTimeout) || !keep) return;
  }
}

}  // namespace regdisk::peer
