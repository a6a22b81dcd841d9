// The peer server over real sockets on 127.0.0.1 (free ports), serving real
// lazy entries: v2 images built into OCI layouts, entries written as the
// node cache writes them, chunks verified by the real chunk store.
#include "peer/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "layer/disk_index.h"
#include "layout/layout.h"
#include "lazy/chunk_store.h"
#include "lazy/fill.h"
#include "lazy_entry.h"
#include "peer/protocol.h"
#include "peer/request.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace regdisk::peer {
namespace {

constexpr uint32_t kChunk = 64 << 10;

// A client socket to the server; every read waits at most 10 s (a test
// that would hang fails instead).
class Conn {
 public:
  explicit Conn(uint16_t port, const char* host = "127.0.0.1", int family = AF_INET) {
    fd_ = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_storage addr{};
    socklen_t len;
    if (family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&addr);
      a->sin_family = AF_INET;
      a->sin_port = htons(port);
      inet_pton(AF_INET, host, &a->sin_addr);
      len = sizeof(*a);
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(port);
      inet_pton(AF_INET6, host, &a->sin6_addr);
      len = sizeof(*a);
    }
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), len) == 0;
  }
  ~Conn() { ::close(fd_); }
  bool connected() const { return connected_; }
  void Send(std::string_view bytes) {
    ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
  }
  // Everything until the server closes (or the 10 s timeout: then "TIMEOUT").
  std::string ReadToEnd() {
    std::string out;
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n < 0 && errno == EAGAIN) return out + "TIMEOUT";
      if (n <= 0) return out;
      out.append(buf, static_cast<size_t>(n));
    }
  }
  // One response on a kept-alive connection (its head, then Content-Length
  // bytes unless `head_only`).
  std::string ReadResponse(bool head_only = false) {
    std::string out;
    char c;
    while (out.find("\r\n\r\n") == std::string::npos) {
      if (::recv(fd_, &c, 1, 0) != 1) return out;
      out += c;
    }
    size_t at = out.find("Content-Length: ");
    size_t len = at == std::string::npos ? 0 : std::stoul(out.substr(at + 16));
    std::string body(head_only ? 0 : len, '\0');
    for (size_t got = 0; got < body.size();) {
      ssize_t n = ::recv(fd_, body.data() + got, body.size() - got, 0);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    return out + body;
  }

 private:
  int fd_;
  bool connected_ = false;
};

int StatusOf(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12) return 0;
  return std::stoi(response.substr(9, 3));
}
std::string BodyOf(const std::string& response) {
  size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}
std::string HeaderOf(const std::string& response, const std::string& name) {
  size_t at = response.find("\r\n" + name + ": ");
  if (at == std::string::npos || at > response.find("\r\n\r\n")) return "";
  at += name.size() + 4;
  return response.substr(at, response.find("\r\n", at) - at);
}

std::string Get(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: peer\r\nConnection: close\r\n\r\n";
}
std::string Have(const std::vector<std::string>& hexes) {
  std::string body;
  for (const auto& h : hexes) body += h + "\n";
  return "POST /v1/have HTTP/1.1\r\nHost: peer\r\nConnection: close\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

class PeerServerTest : public ::testing::Test {
 protected:
  // A raw disk of 8 chunks: data in 0-5 (each chunk's bytes differ, and
  // from `variant`'s), a hole in 6-7.
  std::string MakeDisk(const std::string& name, int variant) {
    const std::string path = dir_.path() + "/" + name;
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    EXPECT_EQ(::ftruncate(fd, 8 * kChunk), 0);
    for (int c = 0; c < 6; ++c) {
      std::string data(kChunk, '\0');
      for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 31 + c * 7 + variant * 13) % 251);
      EXPECT_EQ(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(c) * kChunk), kChunk);
    }
    ::close(fd);
    return path;
  }

  // The lazy entry KEY of `disk`, its layout kept for loading chunks.
  void Entry(const std::string& disk, const std::string& key) {
    const std::string path = dir_.path() + "/layout-" + key;
    auto layout = layout::Layout::Open(path, true);
    ASSERT_TRUE(layout.ok());
    auto m = testing::BuildV2Image(**layout, disk, kChunk);
    ASSERT_TRUE(m.ok()) << m.status().message();
    Status s = testing::WriteLazyEntry(**layout, *m, "oci:" + path + "@" + m->str(), root(), key);
    ASSERT_TRUE(s.ok()) << s.message();
    layouts_[key] = std::move(*layout);
  }

  // Loads chunks `chunks` of entry KEY through the real chunk store (which
  // verifies them, writes disk.partial and sets their map bits).
  void Load(const std::string& key, std::vector<size_t> chunks) {
    auto config = lazy::ReadServeConfig(lazy::EntryDir(root(), key));
    ASSERT_TRUE(config.ok());
    layout::Layout* src = layouts_[key].get();
    oci::Digest blob = config->layer.digest;
    auto store = lazy::ChunkStore::Open(
        root(), key, [src, blob](uint64_t off, char* buf, size_t len) { return src->ReadAt(blob, off, buf, len); },
        {.use_donors = false});
    ASSERT_TRUE(store.ok()) << store.status().message();
    for (size_t i : chunks) ASSERT_TRUE((*store)->Ensure(i).ok());
  }

  std::string Digest(const std::string& key, size_t chunk) {
    auto bytes = ReadFile(lazy::EntryDir(root(), key) + "/" + lazy::kIndexFile);
    auto index = layer::DecodeIndex(*bytes, UINT64_MAX);
    if (!index.ok() || chunk >= index->entries.size()) {
      ADD_FAILURE() << "no chunk " << chunk << " in the index of " << key;
      return std::string(64, '0');
    }
    return layer::ShaHex(index->entries[chunk].sha256);
  }

  std::unique_ptr<Server> Start(ServerOptions o = {}) {
    o.root = root();
    o.listen = o.listen.empty() ? "127.0.0.1:0" : o.listen;
    o.rescan_interval = std::chrono::milliseconds(0);
    o.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(log_mu_);
      log_ += line + "\n";
    };
    auto s = Server::Start(o);
    EXPECT_TRUE(s.ok()) << s.status().message();
    return s.ok() ? std::move(*s) : nullptr;
  }

  std::string Ask(const Server& s, const std::string& request) {
    Conn c(s.port());
    EXPECT_TRUE(c.connected());
    c.Send(request);
    return c.ReadToEnd();
  }

  std::string Log() {
    std::lock_guard<std::mutex> lock(log_mu_);
    return log_;
  }

  std::string root() const { return dir_.path() + "/root"; }
  TempDir dir_{"regdisk-peer"};
  std::map<std::string, std::unique_ptr<layout::Layout>> layouts_;
  std::mutex log_mu_;
  std::string log_;
};

TEST_F(PeerServerTest, ServesVerifiedChunksByteIdentical) {
  const std::string disk = MakeDisk("a.img", 0);
  Entry(disk, "a");
  Load("a", {0, 3});
  auto s = Start();
  ASSERT_TRUE(s);
  const std::string want = ReadFile(disk)->substr(3 * kChunk, kChunk);
  std::string r = Ask(*s, Get(kChunkPathPrefix + Digest("a", 3)));
  ASSERT_EQ(StatusOf(r), 200) << r.substr(0, 200);
  EXPECT_EQ(HeaderOf(r, "Content-Type"), "application/octet-stream");
  EXPECT_EQ(HeaderOf(r, "Content-Length"), std::to_string(kChunk));
  EXPECT_TRUE(BodyOf(r) == want);

  // HEAD: the same head, no body.
  r = Ask(*s, "HEAD " + std::string(kChunkPathPrefix) + Digest("a", 3) + " HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(StatusOf(r), 200);
  EXPECT_EQ(HeaderOf(r, "Content-Length"), std::to_string(kChunk));
  EXPECT_EQ(BodyOf(r), "");

  r = Ask(*s, Get(kHealthPath));
  EXPECT_EQ(StatusOf(r), 200);
  EXPECT_EQ(BodyOf(r), "ok\n");

  // Keep-alive, pipelined: two chunks on one connection.
  Conn c(s->port());
  c.Send("GET " + std::string(kChunkPathPrefix) + Digest("a", 0) + " HTTP/1.1\r\nHost: p\r\n\r\n" +
         Get(kChunkPathPrefix + Digest("a", 3)));
  std::string first = c.ReadResponse();
  EXPECT_EQ(StatusOf(first), 200);
  EXPECT_EQ(HeaderOf(first, "Connection"), "keep-alive");
  EXPECT_TRUE(BodyOf(first) == ReadFile(disk)->substr(0, kChunk));
  std::string second = c.ReadToEnd();
  EXPECT_EQ(StatusOf(second), 200);
  EXPECT_TRUE(BodyOf(second) == want);
}

TEST_F(PeerServerTest, ServesPromotedEntries) {
  const std::string disk = MakeDisk("b.img", 1);
  Entry(disk, "b");
  ASSERT_TRUE(lazy::FillEntry(root(), "b", *layouts_["b"]).ok());
  ASSERT_TRUE(PathExists(lazy::EntryDir(root(), "b") + "/disk"));
  auto s = Start();
  ASSERT_TRUE(s);
  std::string r = Ask(*s, Get(kChunkPathPrefix + Digest("b", 5)));
  ASSERT_EQ(StatusOf(r), 200);
  EXPECT_TRUE(BodyOf(r) == ReadFile(disk)->substr(5 * kChunk, kChunk));
}

TEST_F(PeerServerTest, RefusesUnverifiedChunks) {
  Entry(MakeDisk("a.img", 0), "a");
  Load("a", {0, 1});
  auto s = Start();
  ASSERT_TRUE(s);
  // Listed but not loaded: pending.
  std::string r = Ask(*s, Get(kChunkPathPrefix + Digest("a", 2)));
  EXPECT_EQ(StatusOf(r), 404);
  EXPECT_EQ(HeaderOf(r, kChunkStateHeader), kPending);
  // Listed nowhere: absent.
  r = Ask(*s, Get(kChunkPathPrefix + std::string(64, 'e')));
  EXPECT_EQ(StatusOf(r), 404);
  EXPECT_EQ(HeaderOf(r, kChunkStateHeader), kAbsent);

  // Marked in the map, but its bytes changed on disk: never served.
  const std::string partial = lazy::EntryDir(root(), "a") + "/disk.partial";
  int fd = ::open(partial.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, "X", 1, kChunk + 77), 1);
  ::close(fd);
  r = Ask(*s, Get(kChunkPathPrefix + Digest("a", 1)));
  EXPECT_EQ(StatusOf(r), 404);
  EXPECT_EQ(BodyOf(r), "Not Found\n");
  EXPECT_NE(Log().find("do not verify"), std::string::npos) << Log();
  // Nor listed as held any more; chunk 0 still is.
  r = Ask(*s, Have({Digest("a", 1), Digest("a", 0)}));
  EXPECT_EQ(BodyOf(r), Digest("a", 0) + "\n");

  // An entry whose index does not match its anchor serves nothing.
  Entry(MakeDisk("c.img", 2), "c");
  Load("c", {0});
  const std::string c0 = Digest("c", 0);  // read before the index is spoilt
  const std::string index = lazy::EntryDir(root(), "c") + "/index";
  std::string bytes = *ReadFile(index);
  bytes[40] ^= 1;
  ASSERT_TRUE(WriteFileAtomic(index, bytes).ok());
  r = Ask(*s, Get(kChunkPathPrefix + c0));
  EXPECT_EQ(StatusOf(r), 404);
  EXPECT_EQ(HeaderOf(r, kChunkStateHeader), kAbsent);
  EXPECT_NE(Log().find("not serving the chunks of"), std::string::npos) << Log();
}

TEST_F(PeerServerTest, HaveReturnsExactlyTheHeldSubsetInOrder) {
  Entry(MakeDisk("a.img", 0), "a");
  Load("a", {1, 4});
  Entry(MakeDisk("b.img", 1), "b");
  ASSERT_TRUE(lazy::FillEntry(root(), "b", *layouts_["b"]).ok());
  auto s = Start();
  ASSERT_TRUE(s);
  const std::vector<std::string> asked = {Digest("a", 4), std::string(64, '0'), Digest("b", 2), Digest("a", 0),
                                          Digest("a", 1), Digest("a", 2)};
  std::string r = Ask(*s, Have(asked));
  ASSERT_EQ(StatusOf(r), 200) << r;
  EXPECT_EQ(BodyOf(r), Digest("a", 4) + "\n" + Digest("b", 2) + "\n" + Digest("a", 1) + "\n");
  EXPECT_EQ(BodyOf(Ask(*s, Have({}))), "");
  // Expect: 100-continue (as libcurl sends for larger bodies): the body
  // follows the 100.
  Conn c(s->port());
  c.Send("POST /v1/have HTTP/1.1\r\nHost: p\r\nConnection: close\r\nExpect: 100-continue\r\nContent-Length: 65\r\n\r\n");
  EXPECT_EQ(c.ReadResponse(), "HTTP/1.1 100 Continue\r\n\r\n");
  c.Send(Digest("a", 4) + "\n");
  r = c.ReadToEnd();
  EXPECT_EQ(StatusOf(r), 200);
  EXPECT_EQ(BodyOf(r), Digest("a", 4) + "\n");
  // A malformed body is 400.
  r = Ask(*s, "POST /v1/have HTTP/1.1\r\nHost: p\r\nConnection: close\r\nContent-Length: 4\r\n\r\nabc\n");
  EXPECT_EQ(StatusOf(r), 400);
  // /v1/have takes POST only; chunks take no POST.
  EXPECT_EQ(StatusOf(Ask(*s, Get(kHavePath))), 405);
  EXPECT_EQ(StatusOf(Ask(*s, "POST " + std::string(kChunkPathPrefix) + Digest("a", 4) +
                                  " HTTP/1.1\r\nHost: p\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")),
            405);
}

TEST_F(PeerServerTest, FindsEntriesMadeAndForgetsEntriesRemovedAfterItStarted) {
  auto s = Start();
  ASSERT_TRUE(s);
  EXPECT_EQ(StatusOf(Ask(*s, Get(kChunkPathPrefix + std::string(64, 'e')))), 404);
  Entry(MakeDisk("a.img", 0), "a");
  Load("a", {2});
  EXPECT_EQ(StatusOf(Ask(*s, Get(kChunkPathPrefix + Digest("a", 2)))), 200);
  // Another entry: found by the next scan, which keeps a's places.
  Entry(MakeDisk("b.img", 1), "b");
  Load("b", {4});
  const uint64_t scans = s->holdings().scans();
  EXPECT_EQ(StatusOf(Ask(*s, Get(kChunkPathPrefix + Digest("b", 4)))), 200);
  EXPECT_EQ(s->holdings().scans(), scans + 1);
  EXPECT_EQ(StatusOf(Ask(*s, Get(kChunkPathPrefix + Digest("a", 2)))), 200);
  const std::string pending = kChunkPathPrefix + Digest("a", 3);
  EXPECT_EQ(HeaderOf(Ask(*s, Get(pending)), kChunkStateHeader), kPending);
  // Removed (gc): neither served nor pending.
  ASSERT_TRUE(RemoveAll(lazy::EntryDir(root(), "a")).ok());
  EXPECT_EQ(HeaderOf(Ask(*s, Get(pending)), kChunkStateHeader), kAbsent);
  EXPECT_EQ(HeaderOf(Ask(*s, Get(kChunkPathPrefix + std::string(64, 'e'))), kChunkStateHeader), kAbsent);
}

TEST_F(PeerServerTest, RefusesPathsOutsideTheChunkNamespaceWithoutTouchingFiles) {
  Entry(MakeDisk("a.img", 0), "a");
  Load("a", {0});
  ASSERT_TRUE(WriteFileAtomic(root() + "/secret", "SECRET").ok());
  auto s = Start();
  ASSERT_TRUE(s);
  const std::string hex = Digest("a", 0);
  const std::string prefix = kChunkPathPrefix;
  struct Case {
    std::string target;
    int status;
  };
  const Case cases[] = {
      {prefix + "../../secret", 404},
      {prefix + "../../../root/secret", 404},
      {"/v1/chunks/sha256/..%2f..%2fsecret", 404},
      {"/v1/chunks/sha256/%2e%2e/%2e%2e/secret", 404},
      {"/../secret", 404},
      {"/secret", 404},
      {"/disks/a/disk.partial", 404},
      {"http://127.0.0.1/v1/chunks/sha256/" + hex, 400},  // absolute-form
      {prefix + hex + "/", 404},
      {prefix + hex + "?", 404},
      {prefix + hex + "0", 404},
      {prefix + std::string(hex.size() * 40, 'a'), 404},  // overlong
      {prefix + std::string(64, 'A'), 404},               // uppercase hex
      {prefix + std::string(64, 'g'), 404},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.target);
    std::string r = Ask(*s, Get(c.target));
    EXPECT_EQ(StatusOf(r), c.status) << r;
    EXPECT_EQ(r.find("SECRET"), std::string::npos);
    EXPECT_EQ(HeaderOf(r, kChunkStateHeader), "");
  }
  // None of them reached the files: no digest was looked up.
  EXPECT_EQ(s->holdings().lookups(), 0u);
  EXPECT_EQ(s->holdings().scans(), 0u);
  // The refusals were logged, escaped, one line per kind.
  std::string r = Ask(*s, Get("/\x1b[2J"));
  EXPECT_EQ(StatusOf(r), 400);
  EXPECT_EQ(Log().find('\x1b'), std::string::npos);
  EXPECT_NE(Log().find("404 path"), std::string::npos) << Log();
  size_t lines = 0;
  for (size_t at = Log().find("(404 path)"); at != std::string::npos; at = Log().find("(404 path)", at + 1)) ++lines;
  EXPECT_EQ(lines, 1u) << Log();
}

TEST_F(PeerServerTest, RefusesOversizeHeadsAndBodies) {
  auto s = Start();
  ASSERT_TRUE(s);
  std::string big = "GET /v1/health HTTP/1.1\r\nHost: p\r\nX-Big: " + std::string(kMaxHeadBytes, 'a') + "\r\n\r\n";
  std::string r = Ask(*s, big);
  EXPECT_EQ(StatusOf(r), 431);
  EXPECT_EQ(HeaderOf(r, "Connection"), "close");
  r = Ask(*s, "POST /v1/have HTTP/1.1\r\nHost: p\r\nContent-Length: " + std::to_string(kMaxHaveBody + 1) + "\r\n\r\n");
  EXPECT_EQ(StatusOf(r), 413);
  r = Ask(*s, "POST /v1/have HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  EXPECT_EQ(StatusOf(r), 400);
  r = Ask(*s, "BREW /v1/health HTTP/1.1\r\nHost: p\r\n\r\n");
  EXPECT_EQ(StatusOf(r), 405);
}

TEST_F(PeerServerTest, RefusesConnectionsOverTheCap) {
  auto s = Start({.max_connections = 2});
  ASSERT_TRUE(s);
  // Two kept-alive connections, each answered once (so both are accepted).
  Conn a(s->port()), b(s->port());
  for (Conn* c : {&a, &b}) {
    c->Send("GET /v1/health HTTP/1.1\r\nHost: p\r\n\r\n");
    EXPECT_EQ(StatusOf(c->ReadResponse()), 200);
  }
  std::string r = Ask(*s, Get(kHealthPath));
  EXPECT_EQ(StatusOf(r), 503) << r;
  EXPECT_NE(Log().find("(503)"), std::string::npos) << Log();
}

TEST_F(PeerServerTest, DropsClientsThatSendNothingOrTooSlowly) {
  auto s = Start({.idle_timeout = std::chrono::milliseconds(200), .request_timeout = std::chrono::milliseconds(300)});
  ASSERT_TRUE(s);
  Conn idle(s->port());
  EXPECT_EQ(idle.ReadToEnd(), "");  // closed by the server, before the client's 10 s
  Conn slow(s->port());
  slow.Send("GET /v1/health HTTP/1.1\r\n");
  EXPECT_EQ(slow.ReadToEnd(), "");
  EXPECT_NE(Log().find("(timeout)"), std::string::npos) << Log();
}

TEST_F(PeerServerTest, StopsWithConnectionsOpen) {
  auto s = Start();
  ASSERT_TRUE(s);
  Conn idle(s->port()), partial(s->port());
  partial.Send("GET /v1/health HTTP/1.1\r\n");
  idle.Send("GET /v1/health HTTP/1.1\r\nHost: p\r\n\r\n");
  EXPECT_EQ(StatusOf(idle.ReadResponse()), 200);
  s->Stop();  // returns once every connection's thread ended (the default timeouts are 10 s)
  EXPECT_EQ(idle.ReadToEnd(), "");
  EXPECT_EQ(partial.ReadToEnd(), "");
  EXPECT_FALSE(Conn(s->port()).connected());
  s->Stop();  // again: nothing to do
}

TEST_F(PeerServerTest, ListensOnIpv6AndRefusesBadAddresses) {
  auto s = Server::Start({.root = root(), .listen = "[::1]:0"});
  if (!s.ok()) GTEST_SKIP() << "no IPv6 loopback here: " << s.status().message();
  Conn c((*s)->port(), "::1", AF_INET6);
  ASSERT_TRUE(c.connected());
  c.Send(Get(kHealthPath));
  EXPECT_EQ(StatusOf(c.ReadToEnd()), 200);
  for (const char* bad : {"", "127.0.0.1", "localhost:80", "127.0.0.1:65536", "::1:80", "[::1]80", "1.2.3.4:x"}) {
    auto r = Server::Start({.root = root(), .listen = bad});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().message();
  }
}

}  // namespace
}  // namespace regdisk::peer
