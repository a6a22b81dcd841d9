// Loads untrusted YAML with yaml-cpp within bounds: at most 1 MiB of text,
// no control characters, one document (see below for several), nesting at most 64 deep, at most
// 100000 nodes, no anchors or aliases (billion laughs), no duplicate or
// non-scalar mapping keys. These are checked on the parser's events before
// yaml-cpp builds a node graph. yaml-cpp exceptions never escape.
//
// One repair is made for the seed design document, whose example writes a
// disk's `- source:` / `- target:` as list items under `- type: ...` (not
// valid YAML): when the text fails to parse, such items become plain keys
// of the disk mapping and the text is parsed again.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string_view>
#include <vector>

#include "util/status.h"

namespace regdisk::vm {

// Errors are kInvalidArgument, "yaml: line L, column C: what".
StatusOr<YAML::Node> LoadBoundedYaml(std::string_view yaml);

// The same bounds for a stream of documents separated by "---": at most 64
// documents, the node limit over all of them. A document may be null
// (an empty one between two "---"); the caller skips those.
StatusOr<std::vector<YAML::Node>> LoadBoundedYamlDocuments(std::string_view yaml);

}  // namespace regdisk::vm
