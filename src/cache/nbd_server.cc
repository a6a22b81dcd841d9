#include "cache/nbd_server.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "util/fs.h"

#ifndef REGDISK_NBD_PLUGIN_BUILD_PATH
#define REGDISK_NBD_PLUGIN_BUILD_PATH ""
#endif

namespace regdisk::cache {
namespace {

// /proc/PID/cmdline of an nbdkit with a long ROOT: well under this.
constexpr uint64_t kMaxCmdlineBytes = 64 << 10;
// The last log line quoted in a start failure.
constexpr size_t kMaxLogTailBytes = 4096;
// A pid file holds one decimal pid.
constexpr uint64_t kMaxPidFileBytes = 64;
constexpr auto kPollInterval = std::chrono::milliseconds(20);
// A server that exits or hangs at start is tried again (a signal meant for
// another process, a plugin that lost a race at startup), after a pause
// that doubles from kServerRetryPause, before the error reaches the VM.
// Seen under ctest -j2: an nbdkit that bound its socket then shut down
// cleanly at once, with no cause in its log, twice in a row.
constexpr int kServerStartAttempts = 5;
constexpr auto kServerRetryPause = std::chrono::milliseconds(100);

std::string PidFile(const std::string& dir) { return dir + "/nbd.pid"; }
std::string LogFile(const std::string& dir) { return dir + "/nbd.log"; }

pid_t ReadPid(const std::string& dir) {
  auto text = ReadFile(PidFile(dir), kMaxPidFileBytes);
  if (!text.ok()) return -1;
  char* end = nullptr;
  long pid = std::strtol(text->c_str(), &end, 10);
  return pid > 1 && pid < (1l << 22) ? static_cast<pid_t>(pid) : -1;
}

// True when `pid` is a live process (not a zombie).
bool Alive(pid_t pid) {
  if (pid <= 0) return false;
  auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat", 4096);
  if (!stat.ok()) return false;
  size_t paren = stat->rfind(')');
  return paren != std::string::npos && paren + 2 < stat->size() && (*stat)[paren + 2] != 'Z';
}

// True when `pid` is alive and its command line serves `socket`: nbdkit
// ... --unix SOCKET ...
bool Serves(pid_t pid, const std::string& socket) {
  if (!Alive(pid)) return false;
  auto cmdline = ReadFile("/proc/" + std::to_string(pid) + "/cmdline", kMaxCmdlineBytes);
  if (!cmdline.ok()) return false;
  return cmdline->find(std::string("--unix") + '\0' + socket + '\0') != std::string::npos;
}

bool Accepts(const std::string& socket) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket.c_str(), std::min(socket.size() + 1, sizeof addr.sun_path));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

std::string LogTail(const std::string& dir) {
  auto log = ReadFile(LogFile(dir), 64 << 20);
  if (!log.ok() || log->empty()) return "(no output)";
  std::string t = log->size() > kMaxLogTailBytes ? log->substr(log->size() - kMaxLogTailBytes) : *log;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  size_t nl = t.rfind('\n');
  return OneLine(nl == std::string::npos ? t : t.substr(nl + 1));
}

// Starts argv in a new session as a grandchild (never our child: it is not
// reaped by us nor killed with us), stdin /dev/null, stdout and stderr
// appended to `log`; returns its pid.
StatusOr<pid_t> SpawnDetached(const std::vector<std::string>& args, const std::string& log) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log_fd < 0) return IoError("opening " + log, errno);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int p[2];
  if (null_fd < 0 || ::pipe2(p, O_CLOEXEC) != 0) {
    int e = errno;
    ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    return IoError("starting the NBD server", e);
  }
  pid_t child = ::fork();
  if (child == 0) {
    // Only async-signal-safe calls from here on.
    ::setsid();
    pid_t server = ::fork();
    if (server == 0) {
      ::umask(022);
      ::dup2(null_fd, 0);
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
      // Nothing of ours leaks into a process that outlives us: no lock, no
      // registry connection.
      ::close_range(3, ~0U, 0);
      ::execvp(argv[0], argv.data());
      const char msg[] = "regdisk: cannot execute the NBD server\n";
      (void)!::write(2, msg, sizeof msg - 1);
      ::_exit(127);
    }
    (void)!::write(p[1], &server, sizeof server);
    ::_exit(server > 0 ? 0 : 1);
  }
  ::close(log_fd);
  ::close(null_fd);
  ::close(p[1]);
  if (child < 0) {
    ::close(p[0]);
    return IoError("fork", errno);
  }
  pid_t server = -1;
  ssize_t n;
  do n = ::read(p[0], &server, sizeof server); while (n < 0 && errno == EINTR);
  ::close(p[0]);
  int st = 0;
  while (::waitpid(child, &st, 0) < 0 && errno == EINTR) {
  }
  if (n != sizeof server || server <= 0) return Internal("starting the NBD server: fork failed");
  return server;
}

// One start of the server: spawned, its pid recorded, waited for until its
// socket accepts (kServerStartSeconds). Unavailable when it exited or hung.
Status StartServer(const std::string& entry_dir, const std::vector<std::string>& argv) {
  const std::string socket = ServerSocket(entry_dir);
  ASSIGN_OR_RETURN(pid_t pid, SpawnDetached(argv, LogFile(entry_dir)));
  if (Status s = WriteFileAtomic(PidFile(entry_dir), std::to_string(pid) + "\n", 0644); !s.ok()) {
    ::kill(pid, SIGKILL);
    return s;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kServerStartSeconds);
  while (!Accepts(socket)) {
    bool alive = Alive(pid);  // before exec its command line is still ours
    if (!alive || std::chrono::steady_clock::now() > deadline) {
      (void)StopServer(entry_dir);
      return Unavailable("the NBD server of " + entry_dir +
                         (alive ? " did not accept within " + std::to_string(kServerStartSeconds) + " s" : " exited") +
                         ": " + LogTail(entry_dir));
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  return OkStatus();
}

}  // namespace

ServerCommand PluginCommand(const std::string& root, const std::string& key) {
  ServerCommand c;
  if (const char* env = std::getenv("REGDISK_NBD_PLUGIN"); env != nullptr && *env != '\0') {
    c.plugin = env;
  } else {
    std::error_code ec;
    auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    std::string beside = ec ? "" : (exe.parent_path() / "regdisk-nbd.so").string();
    c.plugin = !beside.empty() && PathExists(beside) ? beside : REGDISK_NBD_PLUGIN_BUILD_PATH;
  }
  c.args = {"root=" + root, "key=" + key};
  return c;
}

std::string ServerSocket(const std::string& entry_dir) { return entry_dir + "/nbd.sock"; }

bool ServerRunning(const std::string& entry_dir) {
  return Serves(ReadPid(entry_dir), ServerSocket(entry_dir));
}

Status StopServer(const std::string& entry_dir) {
  const std::string socket = ServerSocket(entry_dir);
  pid_t pid = ReadPid(entry_dir);
  if (Serves(pid, socket)) {
    ::kill(pid, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kServerStopSeconds);
    while (Serves(pid, socket) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(kPollInterval);
    if (Serves(pid, socket)) ::kill(pid, SIGKILL);
    while (Serves(pid, socket)) std::this_thread::sleep_for(kPollInterval);
  }
  ::unlink(socket.c_str());
  ::unlink(PidFile(entry_dir).c_str());
  return OkStatus();
}

Status EnsureServer(const std::string& entry_dir, const ServerCommand& cmd) {
  const std::string socket = ServerSocket(entry_dir);
  if (socket.size() > kMaxSocketPath) {
    return InvalidArgument("lazy serving needs a socket path of at most " + std::to_string(kMaxSocketPath) +
                           " bytes; " + socket + " is longer (use a shorter --root)");
  }
  if (ServerRunning(entry_dir) && Accepts(socket)) return OkStatus();
  RETURN_IF_ERROR(StopServer(entry_dir));
  if (cmd.plugin.empty()) return NotFound("the NBD plugin regdisk-nbd.so was not found (set REGDISK_NBD_PLUGIN)");

  std::vector<std::string> argv = {cmd.nbdkit, "-f", "--log=stderr", "--unix", socket, cmd.plugin};
  argv.insert(argv.end(), cmd.args.begin(), cmd.args.end());
  Status started;
  for (int attempt = 0; attempt < kServerStartAttempts; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(kServerRetryPause * (1 << (attempt - 1)));
    started = StartServer(entry_dir, argv);
    if (started.ok() || started.code() != Code::kUnavailable) break;
  }
  RETURN_IF_ERROR(started);
  if (::chmod(socket.c_str(), 0666) != 0) {
    int e = errno;
    (void)StopServer(entry_dir);
    return IoError("chmod " + socket, e);
  }
  return OkStatus();
}

}  // namespace regdisk::cache
