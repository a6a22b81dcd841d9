// The Dockerfile subset that registry-disk images need (the seed's
// workflow): FROM, ADD/COPY [--chown=U[:G]] SRC /disk[/NAME], LABEL, ENV.
// Comments (#), blank lines, line continuations (\) and the JSON array form
// of ADD/COPY are accepted; instruction keywords are case-insensitive. Any
// other instruction is an error naming its line, as is an ADD/COPY whose
// destination is outside /disk, a source that is a URL or an absolute path,
// or a source that escapes the build context ("..").
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/status.h"

namespace regdisk::build {

struct DockerfileCopy {
  int line = 0;
  std::string source;        // relative to the context, normalised, no ".."
  std::string destination;   // "/disk/" or "/disk/NAME" (normalised)
  std::string chown;         // "" or "107:107" as written
};

struct Dockerfile {
  std::string from;  // "scratch" or an image reference, as written
  std::vector<DockerfileCopy> copies;
  std::vector<std::pair<std::string, std::string>> labels;  // in order
  std::vector<std::pair<std::string, std::string>> env;     // in order
};

// `name` is used in messages ("Dockerfile:7: RUN is not supported ...").
// Limits: the text must be under 1 MiB; at most one FROM (multi-stage
// builds are refused); at least one FROM before any other instruction.
StatusOr<Dockerfile> ParseDockerfile(std::string_view text, std::string_view name = "Dockerfile");

}  // namespace regdisk::build
