#include "harness.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "util/sha256.h"

namespace regdisk::testing {

ProcessResult RunCmd(const std::vector<std::string>& argv) {
  auto r = RunProcess(argv, {.output_limit = 16 << 20});
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : ProcessResult{};
}

ProcessResult Regdisk(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {REGDISK_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCmd(argv);
}

std::string Sha256File(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "missing:" + path;
  Sha256 h;
  std::vector<char> buf(1 << 20);
  ssize_t n;
  while ((n = ::read(fd, buf.data(), buf.size())) > 0) h.Update(buf.data(), static_cast<size_t>(n));
  ::close(fd);
  return h.FinishHex();
}

int CountEntries(const std::string& dir) {
  std::error_code ec;
  int n = 0;
  for (auto it = std::filesystem::directory_iterator(dir, ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec)) {
    ++n;
  }
  return n;
}

void MakeSparseFile(const std::string& path, uint64_t size, const std::vector<uint64_t>& offsets,
                    const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
  for (uint64_t off : offsets) {
    ASSERT_EQ(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(off)),
              static_cast<ssize_t>(data.size()));
  }
  ::close(fd);
}

std::string WaitForPortFile(pid_t* pid, const std::string& port_file, const std::string& log, int seconds,
                            std::string* error) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline && *pid > 0) {
    if (auto port = ReadFile(port_file); port.ok() && !port->empty()) {
      return "127.0.0.1:" + port->substr(0, port->find('\n'));
    }
    if (::waitpid(*pid, nullptr, WNOHANG) == *pid) {
      *pid = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto out = ReadFile(log);
  *error = "did not start: " + (out.ok() ? *out : "");
  return "";
}

pid_t SpawnLogged(const std::vector<std::string>& argv, const std::string& log) {
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fd, 1);
  posix_spawn_file_actions_adddup2(&actions, fd, 2);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> env;
  for (char** e = environ; *e; ++e) {
    if (std::strncmp(*e, "REGISTRY_", 9) != 0) env.push_back(*e);
  }
  env.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, args[0], &actions, nullptr, args.data(), env.data()) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  ::close(fd);
  return pid;
}

bool HaveProgram(const std::string& program) {
  auto r = RunProcess({"sh", "-c", "command -v " + program});
  return r.ok() && r->exit_code == 0;
}

std::string Describe(const ProcessResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\n--- stdout\n" + r.out + "--- stderr\n" + r.err;
}

uint64_t BytesUnder(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st;
    if (::lstat(it->path().c_str(), &st) == 0) total += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return total;
}

Measured RegdiskMeasured(const std::vector<std::string>& args, const std::string& dir) {
  Measured m;
  std::atomic<bool> done{false};
  auto start = std::chrono::steady_clock::now();
  std::thread run([&] {
    m.result = Regdisk(args);
    done = true;
  });
  while (!done) {
    m.peak_bytes = std::max(m.peak_bytes, BytesUnder(dir));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  run.join();
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  m.peak_bytes = std::max(m.peak_bytes, BytesUnder(dir));
  return m;
}

void ExpectRefused(const ProcessResult& r, const std::string& cause) {
  EXPECT_GT(r.exit_code, 0) << "accepted, or crashed\n" << Describe(r);
  EXPECT_EQ(r.signal, 0) << Describe(r);
  EXPECT_TRUE(r.err.starts_with("regdisk: ")) << Describe(r);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "not one line\n" << Describe(r);
  EXPECT_NE(r.err.find(cause), std::string::npos) << Describe(r);
  auto control = std::find_if(r.err.begin(), r.err.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\n') || u == 0x7f;
  });
  EXPECT_EQ(control, r.err.end()) << "control character in the message\n" << Describe(r);
}

}  // namespace regdisk::testing
