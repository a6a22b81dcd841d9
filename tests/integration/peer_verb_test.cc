// `regdisk-node peer` as a daemon: it listens, answers, logs, refuses a bad
// command line with one line, and stops cleanly on SIGTERM and SIGINT. (What
// it serves is tested against the server itself in src/peer/server_test.cc;
// nodes fetching from each other in tests/integration/peers_test.cc.)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <thread>

#include "harness.h"

namespace regdisk::testing {
namespace {

// The port the daemon logged it listens on, waiting up to 10 s; 0 if not.
int LoggedPort(const std::string& log) {
  static const std::regex re(R"(on 127\.0\.0\.1:0 \(port ([0-9]+)\))");
  for (int i = 0; i < 200; ++i) {
    std::smatch m;
    std::string text = ReadFile(log).ok() ? *ReadFile(log) : "";
    if (std::regex_search(text, m, re)) return std::stoi(m[1]);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return 0;
}

std::string Ask(int port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

TEST(PeerVerbTest, ServesUntilSigtermOrSigint) {
  TempDir dir("regdisk-peer-verb");
  const std::string root = dir.path() + "/root";
  ASSERT_TRUE(MakeDirs(root).ok());
  for (int sig : {SIGTERM, SIGINT}) {
    SCOPED_TRACE(sig);
    const std::string log = dir.path() + "/peer-" + std::to_string(sig) + ".log";
    pid_t pid = SpawnLogged({REGDISK_NODE_BIN, "peer", "--root", root, "--listen", "127.0.0.1:0"}, log);
    ASSERT_GT(pid, 0);
    int port = LoggedPort(log);
    ASSERT_GT(port, 0) << *ReadFile(log);
    std::string r = Ask(port, "GET /v1/health HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n");
    EXPECT_TRUE(r.starts_with("HTTP/1.1 200 OK\r\n")) << r;
    r = Ask(port, "GET /v1/chunks/sha256/../../root HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n");
    EXPECT_TRUE(r.starts_with("HTTP/1.1 404 ")) << r;
    ASSERT_EQ(::kill(pid, sig), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << *ReadFile(log);
    std::string text = *ReadFile(log);
    EXPECT_NE(text.find("refused a request (404 path)"), std::string::npos) << text;
    EXPECT_NE(text.find(sig == SIGTERM ? "stopped (SIGTERM)" : "stopped (SIGINT)"), std::string::npos) << text;
  }
}

TEST(PeerVerbTest, RefusesABadCommandLineInOneLine) {
  TempDir dir("regdisk-peer-verb");
  ExpectRefused(RunCmd({REGDISK_NODE_BIN, "peer", "--root", dir.path(), "--listen", "example.com:80"}),
                "must be an IP address literal");
  ExpectRefused(RunCmd({REGDISK_NODE_BIN, "peer", "--root", dir.path() + "/missing", "--listen", "127.0.0.1:0"}),
                "no such directory");
  ExpectRefused(RunCmd({REGDISK_NODE_BIN, "peer", "--root", dir.path(), "--listen", "127.0.0.1:1\x1b[2J"}),
                "--listen");
}

}  // namespace
}  // namespace regdisk::testing
