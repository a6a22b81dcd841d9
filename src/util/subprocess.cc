#include "util/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace regdisk {
namespace {

std::string LastLine(const std::string& s) {
  size_t end = s.find_last_not_of("\n\r ");
  if (end == std::string::npos) return "";
  size_t start = s.rfind('\n', end);
  return s.substr(start == std::string::npos ? 0 : start + 1, end + 1 - (start == std::string::npos ? 0 : start + 1));
}

}  // namespace

StatusOr<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                   const ProcessLimits& limits) {
  if (argv.empty()) return Internal("RunProcess with no program");
  int out_pipe[2], err_pipe[2], exec_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0 ||
      ::pipe2(exec_pipe, O_CLOEXEC) != 0) {
    return IoError("pipe", errno);
  }
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) return IoError("fork", errno);
  if (pid == 0) {
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(err_pipe[1], STDERR_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    if (limits.cpu_seconds > 0) {
      rlimit rl{static_cast<rlim_t>(limits.cpu_seconds), static_cast<rlim_t>(limits.cpu_seconds)};
      ::setrlimit(RLIMIT_CPU, &rl);
    }
    if (limits.address_space > 0) {
      rlimit rl{limits.address_space, limits.address_space};
      ::setrlimit(RLIMIT_AS, &rl);
    }
    ::execvp(args[0], args.data());
    int err = errno;
    (void)!::write(exec_pipe[1], &err, sizeof err);
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ::close(exec_pipe[1]);

  int exec_err = 0;
  ssize_t got = ::read(exec_pipe[0], &exec_err, sizeof exec_err);
  ::close(exec_pipe[0]);

  ProcessResult result;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        size_t room = limits.output_limit - std::min(limits.output_limit, sinks[i]->size());
        sinks[i]->append(buf, std::min(room, static_cast<size_t>(n)));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (got == static_cast<ssize_t>(sizeof exec_err)) {
    return IoError("running " + argv[0], exec_err);
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

StatusOr<ProcessResult> RunChecked(const std::vector<std::string>& argv,
                                   const ProcessLimits& limits) {
  ASSIGN_OR_RETURN(ProcessResult r, RunProcess(argv, limits));
  if (r.exit_code == 0) return r;
  std::string why = r.signal ? std::string("killed by signal ") + strsignal(r.signal)
                             : "exit code " + std::to_string(r.exit_code);
  std::string line = LastLine(r.err);
  return Status(Code::kIo, argv[0] + " failed (" + why + ")" + (line.empty() ? "" : ": " + line));
}

}  // namespace regdisk
