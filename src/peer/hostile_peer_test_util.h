// For tests: a peer server on 127.0.0.1 that speaks peer/protocol.h's chunk
// requests honestly or in one of the ways a broken or hostile peer can
// misbehave. A thread accepts, one thread per connection; keep-alive.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "peer/protocol.h"

namespace regdisk::peer::testing {

enum class Behaviour {
  kHonest,        // 200 with the bytes, or 404 absent
  kCorrupt,       // 200 with one byte flipped
  kHang,          // reads the request, never answers
  kSlow,          // honest after `delay`
  kOversize,      // Content-Length and body 4 KiB longer than the chunk
  kUnbounded,     // no Content-Length, the chunk twice, then close
  kShort,         // 200 with half the chunk (Content-Length saying so)
  kExtra,         // the chunk, Content-Length right, then garbage after it
  kCloseMidBody,  // Content-Length right, half the body, close
  kPending,       // 404 Regdisk-Chunk: pending, for everything
  kBusy,          // 503
};

class HostilePeer {
 public:
  // `chunks`: lowercase hex digest -> bytes.
  HostilePeer(std::map<std::string, std::string> chunks, Behaviour behaviour,
              std::chrono::milliseconds delay = std::chrono::milliseconds(0))
      : chunks_(std::move(chunks)), behaviour_(behaviour), delay_(delay) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 64) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      std::abort();
    }
    port_ = ntohs(a.sin_port);
    accept_ = std::thread([this] { AcceptLoop(); });
  }

  ~HostilePeer() {
    stop_ = true;
    accept_.join();
    std::lock_guard<std::mutex> lock(mu_);
    for (std::thread& t : conns_) t.join();
    ::close(fd_);
  }

  uint16_t port() const { return port_; }
  std::string name() const { return "127.0.0.1:" + std::to_string(port_); }
  int requests() const { return requests_; }
  int connections() const { return connections_; }

 private:
  // Waits for `fd` to be readable; false when stopping.
  bool WaitReadable(int fd) {
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) > 0) return true;
    }
    return false;
  }

  void AcceptLoop() {
    while (WaitReadable(fd_)) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      ++connections_;
      std::lock_guard<std::mutex> lock(mu_);
      conns_.emplace_back([this, c] {
        Serve(c);
        ::close(c);
      });
    }
  }

  static void Send(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }

  static std::string Head(const std::string& status, size_t content_length) {
    return "HTTP/1.1 " + status + "\r\nContent-Length: " + std::to_string(content_length) + "\r\n\r\n";
  }

  void Serve(int fd) {
    std::string in;
    for (;;) {
      size_t end;
      while ((end = in.find("\r\n\r\n")) == std::string::npos) {
        char buf[4096];
        if (!WaitReadable(fd)) return;
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return;
        in.append(buf, static_cast<size_t>(n));
      }
      std::string request = in.substr(0, end);
      in.erase(0, end + 4);
      ++requests_;
      std::string path = request.substr(request.find(' ') + 1);
      path = path.substr(0, path.find(' '));
      std::string hex = path.starts_with(kChunkPathPrefix) ? path.substr(sizeof kChunkPathPrefix - 1) : "";
      auto it = chunks_.find(hex);
      if (behaviour_ == Behaviour::kHang) {
        while (WaitReadable(fd)) {
          char buf[256];
          if (::recv(fd, buf, sizeof buf, 0) <= 0) return;  // the client gave up
        }
        return;
      }
      if (behaviour_ == Behaviour::kSlow) {
        auto until = std::chrono::steady_clock::now() + delay_;
        while (!stop_ && std::chrono::steady_clock::now() < until) {
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      }
      if (behaviour_ == Behaviour::kPending) {
        Send(fd, "HTTP/1.1 404 Not Found\r\nRegdisk-Chunk: pending\r\nContent-Length: 0\r\n\r\n");
        continue;
      }
      if (behaviour_ == Behaviour::kBusy) {
        Send(fd, Head("503 Service Unavailable", 0));
        continue;
      }
      if (it == chunks_.end()) {
        Send(fd, "HTTP/1.1 404 Not Found\r\nRegdisk-Chunk: absent\r\nContent-Length: 0\r\n\r\n");
        continue;
      }
      std::string body = it->second;
      switch (behaviour_) {
        case Behaviour::kCorrupt:
          body[body.size() / 2] ^= 1;
          break;
        case Behaviour::kOversize:
          body += std::string(4096, 'x');
          break;
        case Behaviour::kUnbounded:
          Send(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body + body);
          return;
        case Behaviour::kShort:
          body.resize(body.size() / 2);
          break;
        case Behaviour::kExtra:
          Send(fd, Head("200 OK", body.size()) + body + "HTTP/1.1 200 OK\r\n\r\ngarbage");
          continue;
        case Behaviour::kCloseMidBody:
          Send(fd, Head("200 OK", body.size()) + body.substr(0, body.size() / 2));
          return;
        default:
          break;
      }
      Send(fd, Head("200 OK", body.size()) + body);
    }
  }

  std::map<std::string, std::string> chunks_;
  Behaviour behaviour_;
  std::chrono::milliseconds delay_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0}, connections_{0};
  std::mutex mu_;
  std::vector<std::thread> conns_;
  std::thread accept_;
};

}  // namespace regdisk::peer::testing
