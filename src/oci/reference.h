// Image references in the Docker reference grammar
// (github.com/distribution/reference), normalised as docker and podman do:
//   busybox                 -> docker.io/library/busybox:latest
//   localhost:5000/a/b      -> localhost:5000/a/b:latest
//   quay.io/x/y@sha256:...  -> digest kept, tag empty
//   a/b:v1@sha256:...       -> both kept (the digest wins when pulling)
// The first path component is a registry host when it contains '.' or ':'
// or is "localhost"; otherwise the registry is docker.io.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "oci/digest.h"
#include "util/status.h"

namespace regdisk::oci {

struct Reference {
  std::string registry;    // "docker.io", "localhost:5000", "[::1]:5000"
  std::string repository;  // "library/busybox", "vmdisks/fedora25"
  std::string tag;         // "latest" when neither tag nor digest was given
  std::optional<Digest> digest;

  // Errors name the input and the rule it broke, e.g.
  // `invalid reference "Foo/bar": repository name must be lowercase`.
  static StatusOr<Reference> Parse(std::string_view s);

  // Full normalised form: registry/repository[:tag][@digest].
  std::string str() const;
  // registry/repository without tag or digest.
  std::string name() const;
  // What a registry request names: the digest if set, else the tag.
  std::string identifier() const;
  // Short form as docker prints it: "busybox:latest", "vmdisks/fedora25:v1".
  // Parse(familiar()) gives back the same reference ("docker.io/" is kept
  // where the first component would otherwise read as a host).
  std::string familiar() const;
  // Copy with the tag replaced and any digest dropped. `tag` is not checked.
  Reference WithTag(std::string tag) const;
  // Copy with the digest set; the tag is kept, as docker does.
  Reference WithDigest(const Digest& d) const;
};

}  // namespace regdisk::oci
