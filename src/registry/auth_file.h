// Registry credentials in the JSON files that docker, podman and skopeo
// share: {"auths": {"HOST": {"auth": base64("user:password")}}}.
//
// Reading: the first of these files that has an entry for the host wins
// (a missing file is skipped; an unreadable or malformed one is an error):
//   1. $REGISTRY_AUTH_FILE
//   2. $XDG_RUNTIME_DIR/containers/auth.json
//   3. $HOME/.docker/config.json
// Keys match with or without a scheme or path ("https://quay.io/v1/" is
// quay.io), case-insensitively; docker.io also matches index.docker.io and
// registry-1.docker.io (docker's "https://index.docker.io/v1/").
//
// Writing (Login/Logout) always goes to ONE file, the first that applies:
// $REGISTRY_AUTH_FILE, else $XDG_RUNTIME_DIR/containers/auth.json when
// XDG_RUNTIME_DIR is set (podman's rule), else $HOME/.docker/config.json.
// Each of these is also on the read path, so a login is always seen. Other
// keys and entries in the file are kept; the file is replaced atomically
// with mode 0600 (parent directories made 0700).
//
// Not supported: credential helpers (credsStore, credHelpers), identity
// tokens, and repository-scoped keys ("quay.io/org/repo").
//
// No function here puts a password or an "auth" value in an error message.
// Thread-safe (no shared state); concurrent writers of the same file are not
// serialised (the last rename wins), as with podman.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/base64.h"
#include "util/status.h"

namespace regdisk::registry {

struct Credentials {
  std::string user;
  std::string password;
};

// "user:password" split at the first ':'; InvalidArgument without a ':' or
// with an empty user (the message never repeats the input).
StatusOr<Credentials> ParseUserPassword(std::string_view s);

// The files read, in order, for the current environment.
std::vector<std::string> AuthFileSearchPath();
// The file Login writes and Logout edits.
std::string AuthFileForWriting();

// The credentials for `host` ("quay.io", "127.0.0.1:5000", "docker.io"),
// or nullopt when no file has them.
StatusOr<std::optional<Credentials>> FindCredentials(const std::string& host);
// The same, in one file's contents (`name` is used in error messages).
StatusOr<std::optional<Credentials>> CredentialsFromJson(std::string_view json,
                                                         const std::string& host,
                                                         const std::string& name);

// Sets the entry for `host` in the file at `path`, replacing any entry that
// matches the host under another spelling.
Status StoreCredentials(const std::string& path, const std::string& host,
                        const Credentials& credentials);
// Removes every entry that matches `host`; NotFound when there is none.
Status RemoveCredentials(const std::string& path, const std::string& host);

}  // namespace regdisk::registry
