// podman and buildah for the tests that run rendered manifests with
// `podman kube play` (podman 4.3 and runc from Debian; crun fails on this
// kind of machine): their own storage (vfs) and configuration under a test
// directory, and nofile/nproc ulimits low enough for runc here.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness.h"

namespace regdisk::testing {

class PodmanEnv {
 public:
  // Checks that podman, buildah, runc, catatonit and node are installed and
  // writes the configuration under `dir`; error() says what failed.
  explicit PodmanEnv(const std::string& dir);
  const std::string& error() const { return error_; }
  // `argv` (podman ... or buildah ...) with this configuration and storage.
  ProcessResult Run(std::vector<std::string> argv) const;
  // Removes every pod, volume and image of this storage.
  void RemoveAll() const;
  // podman's version ("4.3.1"), for skip messages.
  std::string Version() const;

 private:
  std::string dir_, error_;
};

// `s` without trailing newlines and spaces.
std::string Trim(std::string s);

// The documents of a YAML file as JSON (an array), read by npm's yaml from
// tests/tools (npm ci --prefix tests/tools); a failure fails the test and
// gives an empty array.
nlohmann::json YamlDocuments(const std::string& file);

}  // namespace regdisk::testing
