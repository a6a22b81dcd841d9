#include <climits>
#include <cstdlib>
#include <sys/stat.h>

#include "build/builder.h"
#include "build/dockerfile.h"

namespace regdisk::build {
namespace {

StatusOr<std::string> RealPath(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) return IoError(path, errno);
  return std::string(buf);
}

// "--chown=107:107" values: numeric only, since a scratch image has no
// /etc/passwd to look names up in.
Status ParseChown(const DockerfileCopy& c, int& uid, int& gid) {
  auto number = [](const std::string& s, int& out) {
    if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) return false;
    out = std::atoi(s.c_str());
    return true;
  };
  auto colon = c.chown.find(':');
  std::string u = c.chown.substr(0, colon);
  std::string g = colon == std::string::npos ? u : c.chown.substr(colon + 1);
  if (!number(u, uid) || !number(g, gid)) {
    return InvalidArgument("line " + std::to_string(c.line) + ": --chown=" + c.chown +
                           ": only numeric UID[:GID] is supported");
  }
  return OkStatus();
}

}  // namespace

Status ApplyDockerfile(const Dockerfile& df, const std::string& context, BuildOptions& options) {
  ASSIGN_OR_RETURN(std::string root, RealPath(context));
  for (const auto& c : df.copies) {
    std::string where = "line " + std::to_string(c.line) + ": ";
    auto real = RealPath(root + "/" + c.source);
    if (!real.ok()) return real.status().Annotate(where + "ADD source");
    if (!real->starts_with(root + "/")) {
      return InvalidArgument(where + "ADD source \"" + c.source + "\" leads outside the build context");
    }
    struct stat st;
    if (::stat(real->c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return InvalidArgument(where + "ADD source \"" + c.source + "\" is not a regular file");
    }
    DiskSource d;
    d.path = *real;
    std::string base = c.source.substr(c.source.rfind('/') + 1);
    d.name = c.destination == "/disk/" ? base : c.destination.substr(6);
    if (!c.chown.empty()) RETURN_IF_ERROR(ParseChown(c, d.uid, d.gid));
    options.disks.push_back(d);
  }
  for (const auto& [k, v] : df.labels) options.labels[k] = v;
  for (const auto& kv : df.env) options.env.push_back(kv);
  return OkStatus();
}

}  // namespace regdisk::build
