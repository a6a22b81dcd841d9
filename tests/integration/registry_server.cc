#include "registry_server.h"

#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <sstream>
#include <thread>

#include "util/subprocess.h"

extern char** environ;

namespace regdisk::testing {
namespace {

constexpr char kRegistry[] = "/usr/bin/docker-registry";
constexpr char kPython[] = "/usr/bin/python3";  // Debian's, with python3-jwt
constexpr auto kStartTimeout = std::chrono::seconds(15);

bool Check(const StatusOr<ProcessResult>& r, std::string& error, const std::string& what) {
  if (r.ok() && r->exit_code == 0) return true;
  error = what + ": " + (r.ok() ? r->err : r.status().message());
  return false;
}

}  // namespace

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

RegistryServer::RegistryServer(Flavour flavour, const std::string& token_field) : flavour_(flavour) {
  if (Setup(token_field)) StartRegistry();
}

RegistryServer::RegistryServer(std::vector<std::string> launcher, const std::string& address, int port)
    : flavour_(Flavour::kOpen), launcher_(std::move(launcher)), address_(address) {
  port_ = port;
  if (Setup("token")) StartRegistry();
}

RegistryServer::~RegistryServer() {
  for (pid_t pid : {registry_pid_, token_pid_}) {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  }
}

bool RegistryServer::Setup(const std::string& token_field) {
  const std::string d = dir_.path();
  if (port_ == 0) port_ = FreePort();
  std::ostringstream config;
  config << "version: 0.1\n"
         << "log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\n"
         << "storage:\n  filesystem:\n    rootdirectory: " << d << "/storage\n"
         << "  delete:\n    enabled: true\n"
         << "  maintenance:\n    uploadpurging:\n      enabled: false\n"
         << "http:\n  addr: " << host() << "\n"
         << "  secret: regdisk-test-secret\n";  // fixed: upload URLs survive a restart
  if (!MakeDirs(ca_dir()).ok()) return Fail("cannot create " + ca_dir());
  auto openssl = [&](std::vector<std::string> args, const std::string& what) {
    args.insert(args.begin(), "openssl");
    return Check(RunProcess(args), error_, what);
  };
  switch (flavour_) {
    case Flavour::kOpen:
      break;
    case Flavour::kBasic: {
      auto r = RunProcess({"htpasswd", "-Bbn", kUser, kPassword});
      if (!Check(r, error_, "htpasswd")) return false;
      if (!WriteFileAtomic(d + "/htpasswd", r->out).ok()) return Fail("writing htpasswd");
      config << "auth:\n  htpasswd:\n    realm: regdisk-test\n    path: " << d << "/htpasswd\n";
      break;
    }
    case Flavour::kToken: {
      if (!openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", d + "/token.key", "-out", d + "/token.crt", "-days", "2", "-subj",
                    "/CN=regdisk-test-token"},
                   "making the token signing key")) {
        return false;
      }
      token_port_ = FreePort();
      token_pid_ = SpawnLogged({kPython, REGDISK_SOURCE_DIR "/tests/tools/token_server.py", "--port",
                          std::to_string(token_port_), "--key", d + "/token.key", "--cert", d + "/token.crt",
                          "--issuer", "regdisk-test-issuer", "--user", std::string(kUser) + ":" + kPassword,
                          "--field", token_field},
                         d + "/token.log");
      if (!WaitReady("http://127.0.0.1:" + std::to_string(token_port_) + "/token", token_pid_)) return false;
      config << "auth:\n  token:\n    realm: http://127.0.0.1:" << token_port_ << "/token\n"
             << "    service: regdisk-test\n    issuer: regdisk-test-issuer\n"
             << "    rootcertbundle: " << d << "/token.crt\n";
      break;
    }
    case Flavour::kTls: {
      std::string ca = ca_dir() + "/ca.crt";
      if (!openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", d + "/ca.key", "-out", ca, "-days", "2", "-subj", "/CN=regdisk-test-ca",
                    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"},
                   "making the CA") ||
          !openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                    d + "/server.key", "-out", d + "/server.csr", "-subj", "/CN=127.0.0.1"},
                   "making the server key")) {
        return false;
      }
      if (!WriteFileAtomic(d + "/ext.cnf", "subjectAltName=IP:127.0.0.1,DNS:localhost\n").ok()) {
        return Fail("writing ext.cnf");
      }
      if (!openssl({"x509", "-req", "-in", d + "/server.csr", "-CA", ca, "-CAkey", d + "/ca.key",
                    "-CAcreateserial", "-out", d + "/server.crt", "-days", "2", "-extfile", d + "/ext.cnf"},
                   "signing the server certificate")) {
        return false;
      }
      config << "  tls:\n    certificate: " << d << "/server.crt\n    key: " << d << "/server.key\n";
      break;
    }
  }
  if (!WriteFileAtomic(d + "/config.yml", config.str()).ok()) return Fail("writing config.yml");
  return true;
}

bool RegistryServer::StartRegistry() {
  std::vector<std::string> argv = launcher_;
  argv.insert(argv.end(), {kRegistry, "serve", dir_.path() + "/config.yml"});
  registry_pid_ = SpawnLogged(argv, dir_.path() + "/registry.log");
  std::string scheme = flavour_ == Flavour::kTls ? "https://" : "http://";
  return WaitReady(scheme + host() + "/v2/", registry_pid_);
}

bool RegistryServer::WaitReady(const std::string& url, pid_t pid) {
  auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pid <= 0 || ::waitpid(pid, nullptr, WNOHANG) == pid) {
      error_ = "server for " + url + " exited at start:\n" + Log();
      return false;
    }
    std::vector<std::string> curl = launcher_;
    curl.insert(curl.end(), {"curl", "-s", "-k", "-o", "/dev/null", "-w", "%{http_code}", url});
    auto r = RunProcess(curl);
    if (r.ok() && r->out != "000") return true;  // any HTTP answer
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  error_ = url + " did not answer within " + std::to_string(kStartTimeout.count()) + " s:\n" + Log();
  return false;
}

std::string RegistryServer::BlobDataPath(const std::string& hex) const {
  return dir_.path() + "/storage/docker/registry/v2/blobs/sha256/" + hex.substr(0, 2) + "/" + hex + "/data";
}

std::string RegistryServer::Log() const {
  std::string out;
  for (const char* name : {"registry.log", "token.log"}) {
    auto text = ReadFile(dir_.path() + "/" + name);
    if (text.ok()) out += std::string("--- ") + name + "\n" + *text;
  }
  return out;
}

int RegistryServer::CountRequests(const std::string& method, const std::string& part, int status) const {
  auto text = ReadFile(dir_.path() + "/registry.log");
  if (!text.ok()) return -1;
  // Access log lines (combined format): ... "PATCH /v2/a/blobs/uploads/... HTTP/1.1" 202 ...
  std::istringstream lines(*text);
  std::string line, prefix = "\"" + method + " ";
  int n = 0;
  while (std::getline(lines, line)) {
    size_t p = line.find(prefix);
    if (p == std::string::npos) continue;
    size_t end = line.find(' ', p + prefix.size());
    if (line.substr(p + prefix.size(), end - p - prefix.size()).find(part) == std::string::npos) continue;
    if (status != 0 && line.find("\" " + std::to_string(status) + " ", end) == std::string::npos) continue;
    ++n;
  }
  return n;
}

void RegistryServer::Kill() {
  if (registry_pid_ <= 0) return;
  ::kill(registry_pid_, SIGKILL);
  ::waitpid(registry_pid_, nullptr, 0);
  registry_pid_ = -1;
}

bool RegistryServer::Restart() {
  Kill();
  return StartRegistry();
}

}  // namespace regdisk::testing
