// A real Distribution registry (/usr/bin/docker-registry) for tests, on a
// free loopback port, with its storage and config in a temp dir, in one of
// four flavours:
//   kOpen   no auth, plain http
//   kBasic  htpasswd (bcrypt) basic auth, user kUser / kPassword
//   kToken  token auth: tests/tools/token_server.py issues ES256 JWTs
//   kTls    https with a certificate from a throwaway CA (ca_dir())
// The constructor waits until /v2/ answers; error() says why not. The
// destructor stops the servers. Log() returns what they wrote (print it when
// a test fails); CountRequests() reads the registry's access log.
// Not thread-safe; the servers themselves serve any number of clients.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "util/fs.h"

namespace regdisk::testing {

class RegistryServer {
 public:
  enum class Flavour { kOpen, kBasic, kToken, kTls };
  static constexpr char kUser[] = "alice";
  static constexpr char kPassword[] = "Corr3ct-h0rse-battery";

  // `token_field` is the JSON field the token server answers with
  // ("token" or "access_token").
  explicit RegistryServer(Flavour flavour, const std::string& token_field = "token");
  // kOpen on `address`:`port`, elsewhere than on loopback: the registry (and
  // the curl that waits for it) started through `launcher`, e.g.
  // {"tests/tools/netsim", "exec", NAME, "reg"} for a network namespace.
  RegistryServer(std::vector<std::string> launcher, const std::string& address, int port);
  ~RegistryServer();
  RegistryServer(const RegistryServer&) = delete;
  RegistryServer& operator=(const RegistryServer&) = delete;

  const std::string& error() const { return error_; }
  Flavour flavour() const { return flavour_; }
  std::string host() const { return address_ + ":" + std::to_string(port_); }
  // The directory of CA certificates that trusts a kTls server.
  std::string ca_dir() const { return dir_.path() + "/certs"; }
  // The file holding a blob's bytes in the registry's storage.
  std::string BlobDataPath(const std::string& hex) const;

  // The registry's and the token server's output so far.
  std::string Log() const;
  // Requests in the access log with this method whose path contains `part`
  // (and that got this HTTP status, unless 0). A request is logged when its
  // answer is complete, so one cut by Kill() is not.
  int CountRequests(const std::string& method, const std::string& part, int status = 0) const;

  // Kills the registry (SIGKILL: connections break mid-transfer) and starts
  // it again on the same port with the same storage.
  void Kill();
  bool Restart();

 private:
  bool Setup(const std::string& token_field);
  bool Fail(std::string message) {
    error_ = std::move(message);
    return false;
  }
  bool StartRegistry();
  bool WaitReady(const std::string& url, pid_t pid);

  Flavour flavour_;
  std::vector<std::string> launcher_;
  std::string address_ = "127.0.0.1";
  TempDir dir_{"regdisk-registry"};
  int port_ = 0, token_port_ = 0;
  pid_t registry_pid_ = -1, token_pid_ = -1;
  std::string error_;
};

// A free TCP port on 127.0.0.1 (bound and released: a small race).
int FreePort();

}  // namespace regdisk::testing
