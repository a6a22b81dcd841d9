// regdisk-serve: the entrypoint of the registry-disk base image (the seed's
// registry-disk-v1alpha contract). Static, tiny, no shell needed.
//
//   regdisk-serve [--disk /disk/NAME] --dest DIR
//       copies the disk (default: the only file in /disk) into DIR (made if
//       missing; its parent must exist), sparse, under a temp name; re-reads
//       both to verify the copy; renames it into place; writes DIR/.ready;
//       then waits for SIGTERM/SIGINT and removes its copy and DIR/.ready.
//   regdisk-serve --ready DIR
//       exits 0 when DIR/.ready exists (the readiness probe).
//   regdisk-serve --install DIR
//       copies this binary to DIR/regdisk-serve (atomically, mode 0555): the
//       launcher pod's init container puts it where the disk containers,
//       whose images may hold nothing but /disk, can run it.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

int Die(const std::string& msg) {
  std::fprintf(stderr, "regdisk-serve: %s\n", msg.c_str());
  return 1;
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// The only regular file in `dir`, or an error.
bool OnlyFile(const std::string& dir, std::string& out, std::string& err) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    err = Errno("opening " + dir);
    return false;
  }
  std::vector<std::string> files;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    struct stat st;
    if (n != "." && n != ".." && ::lstat((dir + "/" + n).c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      files.push_back(n);
    }
  }
  ::closedir(d);
  if (files.size() != 1) {
    err = dir + " holds " + std::to_string(files.size()) + " disk files; name one with --disk";
    return false;
  }
  out = dir + "/" + files[0];
  return true;
}

bool AllZero(const char* p, size_t n) { return n > 0 && p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0; }

// Copies data regions only (SEEK_DATA/SEEK_HOLE) and skips zero blocks, so
// the copy is as sparse as the source or sparser.
bool SparseCopy(int in, int out, off_t size, std::string& err) {
  std::vector<char> buf(1 << 20);
  off_t pos = 0;
  while (pos < size) {
    off_t data = ::lseek(in, pos, SEEK_DATA);
    if (data < 0) break;  // ENXIO: only a hole remains
    off_t hole = ::lseek(in, data, SEEK_HOLE);
    if (hole < 0) hole = size;
    for (off_t at = data; at < hole;) {
      ssize_t n = ::pread(in, buf.data(), std::min<off_t>(static_cast<off_t>(buf.size()), hole - at), at);
      if (n <= 0) {
        err = Errno("reading the disk");
        return false;
      }
      for (ssize_t off = 0; off < n; off += 4096) {
        size_t len = static_cast<size_t>(std::min<ssize_t>(4096, n - off));
        if (AllZero(buf.data() + off, len)) continue;
        if (::pwrite(out, buf.data() + off, len, at + off) != static_cast<ssize_t>(len)) {
          err = Errno("writing the copy");
          return false;
        }
      }
      at += n;
    }
    pos = hole;
  }
  if (::ftruncate(out, size) != 0 || ::fsync(out) != 0) {
    err = Errno("finishing the copy");
    return false;
  }
  return true;
}

bool SameBytes(int a, int b, off_t size, std::string& err) {
  std::vector<char> x(1 << 20), y(1 << 20);
  for (off_t at = 0; at < size;) {
    ssize_t n = ::pread(a, x.data(), x.size(), at);
    ssize_t m = ::pread(b, y.data(), y.size(), at);
    if (n <= 0 || n != m || std::memcmp(x.data(), y.data(), static_cast<size_t>(n)) != 0) {
      err = "the copy differs from the disk at byte " + std::to_string(at);
      return false;
    }
    at += n;
  }
  return true;
}

int Serve(std::string disk, const std::string& dest) {
  std::string err;
  if (disk.empty() && !OnlyFile("/disk", disk, err)) return Die(err);
  int in = ::open(disk.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (in < 0) return Die(Errno("opening " + disk));
  struct stat st;
  if (::fstat(in, &st) != 0 || !S_ISREG(st.st_mode)) return Die(disk + " is not a regular file");
  std::string name = disk.substr(disk.rfind('/') + 1);
  // DEST is the volume's own directory inside the shared emptyDir: the
  // first container to run makes it.
  if (::mkdir(dest.c_str(), 0755) != 0 && errno != EEXIST) return Die(Errno("creating " + dest));
  std::string final_path = dest + "/" + name, temp = dest + "/." + name + ".tmp";
  ::unlink(temp.c_str());
  int out = ::open(temp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0440);
  if (out < 0) return Die(Errno("creating " + temp));
  if (!SparseCopy(in, out, st.st_size, err) || !SameBytes(in, out, st.st_size, err)) {
    ::unlink(temp.c_str());
    return Die(err);
  }
  ::close(out);
  ::close(in);
  if (::rename(temp.c_str(), final_path.c_str()) != 0) return Die(Errno("publishing " + final_path));
  std::string ready = dest + "/.ready";
  int r = ::open(ready.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444);
  if (r < 0 || ::write(r, name.data(), name.size()) < 0) return Die(Errno("writing " + ready));
  ::close(r);
  std::printf("regdisk-serve: %s ready at %s\n", disk.c_str(), final_path.c_str());
  std::fflush(stdout);
  // SIGTERM/SIGINT are blocked except inside sigsuspend (see main), so one
  // that arrives between the check and the wait is not lost.
  sigset_t none;
  ::sigemptyset(&none);
  while (!g_stop) ::sigsuspend(&none);
  ::unlink(ready.c_str());
  ::unlink(final_path.c_str());
  return 0;
}

int Install(const std::string& dir, const char* argv0) {
  int in = ::open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (in < 0) in = ::open(argv0, O_RDONLY | O_CLOEXEC);
  if (in < 0) return Die(Errno("opening this program"));
  std::string final_path = dir + "/regdisk-serve", temp = dir + "/.regdisk-serve.tmp";
  ::unlink(temp.c_str());
  int out = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0555);
  if (out < 0) return Die(Errno("creating " + temp));
  std::vector<char> buf(1 << 16);
  ssize_t n;
  while ((n = ::read(in, buf.data(), buf.size())) > 0) {
    if (::write(out, buf.data(), static_cast<size_t>(n)) != n) {
      ::unlink(temp.c_str());
      return Die(Errno("writing " + temp));
    }
  }
  if (n < 0 || ::fsync(out) != 0 || ::close(out) != 0) {
    ::unlink(temp.c_str());
    return Die(Errno("copying to " + temp));
  }
  ::close(in);
  if (::rename(temp.c_str(), final_path.c_str()) != 0) return Die(Errno("publishing " + final_path));
  std::printf("regdisk-serve: installed %s\n", final_path.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string disk, dest, ready, install;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string& into) {
      if (i + 1 >= argc) return false;
      into = argv[++i];
      return true;
    };
    if ((a == "--disk" && value(disk)) || (a == "--dest" && value(dest)) || (a == "--ready" && value(ready)) ||
        (a == "--install" && value(install))) {
      continue;
    }
    std::fprintf(stderr,
                 "usage: regdisk-serve [--disk /disk/NAME] --dest DIR\n"
                 "       regdisk-serve --ready DIR\n"
                 "       regdisk-serve --install DIR\n");
    return 2;
  }
  if (!ready.empty()) return ::access((ready + "/.ready").c_str(), F_OK) == 0 ? 0 : 1;
  if (!install.empty()) return Install(install, argv[0]);
  if (dest.empty()) return Die("--dest DIR is required");
  sigset_t block;
  ::sigemptyset(&block);
  ::sigaddset(&block, SIGTERM);
  ::sigaddset(&block, SIGINT);
  ::sigprocmask(SIG_BLOCK, &block, nullptr);
  struct sigaction sa{};
  sa.sa_handler = OnSignal;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  return Serve(disk, dest);
}
