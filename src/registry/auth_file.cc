#include "registry/auth_file.h"

#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <nlohmann/json.hpp>

#include "util/fs.h"

namespace regdisk::registry {
namespace {

using nlohmann::json;

// An auth file is a few KiB; anything huge is not one.
constexpr uint64_t kMaxAuthFileBytes = 4 << 20;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string HomeDockerConfig() {
  std::string home = Env("HOME");
  return (home.empty() ? "/root" : home) + "/.docker/config.json";
}

// "https://Index.Docker.io/v1/" -> "docker.io"; "quay.io" -> "quay.io".
std::string NormalizeHost(std::string_view key) {
  if (auto p = key.find("://"); p != std::string_view::npos) key.remove_prefix(p + 3);
  key = key.substr(0, key.find('/'));
  std::string host(key);
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (host == "index.docker.io" || host == "registry-1.docker.io") return "docker.io";
  return host;
}

StatusOr<json> ParseFile(std::string_view text, const std::string& name) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument(name + ": not a JSON object");
  auto auths = j.find("auths");
  if (auths != j.end() && !auths->is_object()) {
    return InvalidArgument(name + ": \"auths\" is not an object");
  }
  return j;
}

// The file as JSON; an empty object when it does not exist.
StatusOr<json> LoadForEdit(const std::string& path) {
  if (!PathExists(path)) return json::object();
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxAuthFileBytes));
  return ParseFile(text, path);
}

// Creates the missing directories of `dir` with mode 0700 (util's MakeDirs
// does not take a mode).
Status MakePrivateDirs(const std::string& dir) {
  for (size_t slash = dir.find('/', 1);; slash = dir.find('/', slash + 1)) {
    std::string part = dir.substr(0, slash);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) return IoError("creating " + part, errno);
    if (slash == std::string::npos) return OkStatus();
  }
}

Status Save(const std::string& path, const json& j) {
  if (auto slash = path.rfind('/'); slash != std::string::npos && slash > 0) {
    RETURN_IF_ERROR(MakePrivateDirs(path.substr(0, slash)));
  }
  std::string text = j.dump(1, '\t', false, json::error_handler_t::replace) + "\n";
  return WriteFileAtomic(path, text, 0600);
}

}  // namespace

StatusOr<Credentials> ParseUserPassword(std::string_view s) {
  size_t colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return InvalidArgument("credentials must be given as USER:PASSWORD");
  }
  return Credentials{std::string(s.substr(0, colon)), std::string(s.substr(colon + 1))};
}

std::vector<std::string> AuthFileSearchPath() {
  std::vector<std::string> out;
  if (std::string f = Env("REGISTRY_AUTH_FILE"); !f.empty()) out.push_back(f);
  if (std::string x = Env("XDG_RUNTIME_DIR"); !x.empty()) out.push_back(x + "/containers/auth.json");
  out.push_back(HomeDockerConfig());
  return out;
}

std::string AuthFileForWriting() {
  if (std::string f = Env("REGISTRY_AUTH_FILE"); !f.empty()) return f;
  if (std::string x = Env("XDG_RUNTIME_DIR"); !x.empty()) return x + "/containers/auth.json";
  return HomeDockerConfig();
}

StatusOr<std::optional<Credentials>> CredentialsFromJson(std::string_view text,
                                                         const std::string& host,
                                                         const std::string& name) {
  ASSIGN_OR_RETURN(json j, ParseFile(text, name));
  auto auths = j.find("auths");
  if (auths == j.end()) return std::optional<Credentials>();
  std::string want = NormalizeHost(host);
  for (const auto& [key, entry] : auths->items()) {
    if (NormalizeHost(key) != want) continue;
    auto auth = entry.is_object() ? entry.find("auth") : entry.end();
    if (auth == entry.end() || !auth->is_string() || auth->get_ref<const std::string&>().empty()) {
      continue;  // e.g. an identity token only: not supported, look further
    }
    std::optional<std::string> decoded = Base64Decode(auth->get_ref<const std::string&>());
    if (!decoded) return InvalidArgument(name + ": the \"auth\" of " + key + " is not base64");
    auto creds = ParseUserPassword(*decoded);
    if (!creds.ok()) return creds.status().Annotate(name + ": the \"auth\" of " + key);
    return std::optional<Credentials>(std::move(*creds));
  }
  return std::optional<Credentials>();
}

StatusOr<std::optional<Credentials>> FindCredentials(const std::string& host) {
  for (const std::string& path : AuthFileSearchPath()) {
    if (!PathExists(path)) continue;
    ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxAuthFileBytes));
    ASSIGN_OR_RETURN(std::optional<Credentials> found, CredentialsFromJson(text, host, path));
    if (found) return found;
  }
  return std::optional<Credentials>();
}

Status StoreCredentials(const std::string& path, const std::string& host,
                        const Credentials& credentials) {
  ASSIGN_OR_RETURN(json j, LoadForEdit(path));
  json& auths = j["auths"];
  if (auths.is_null()) auths = json::object();
  std::string want = NormalizeHost(host);
  for (auto it = auths.begin(); it != auths.end();) {
    it = NormalizeHost(it.key()) == want ? auths.erase(it) : std::next(it);
  }
  auths[host] = {{"auth", Base64Encode(credentials.user + ":" + credentials.password)}};
  return Save(path, j);
}

Status RemoveCredentials(const std::string& path, const std::string& host) {
  ASSIGN_OR_RETURN(json j, LoadForEdit(path));
  auto auths = j.find("auths");
  size_t removed = 0;
  if (auths != j.end()) {
    std::string want = NormalizeHost(host);
    for (auto it = auths->begin(); it != auths->end();) {
      if (NormalizeHost(it.key()) == want) {
        it = auths->erase(it);
        ++removed;
      } else {
        ++it;
      }
    }
  }
  if (removed == 0) return NotFound("not logged in to " + host + " (in " + path + ")");
  return Save(path, j);
}

}  // namespace regdisk::registry
