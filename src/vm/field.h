// A YAML node together with its field path ("spec.volumes[1].registryDisk"),
// so that every error names the field it is about. Lookups never throw and
// never insert: a missing key or index gives an absent Field.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <string_view>

#include "util/status.h"

namespace regdisk::vm {

struct Field {
  YAML::Node node;      // a null node when absent
  std::string path;
  bool exists = true;   // the key or index is there (its value may be null)

  Field operator[](const char* key) const;  // absent unless this is a mapping with key
  Field operator[](size_t i) const;         // absent unless this is a sequence with i
  bool present() const { return exists && !node.IsNull(); }

  Status Error(const std::string& msg) const;
  Status NeedMap() const;                     // ok when not present or a mapping
  // The length of a sequence; "required" when absent and required, which
  // also refuses an empty one.
  StatusOr<size_t> SeqSize(bool required) const;
  StatusOr<std::string> Str(bool required) const;  // "" when absent and not required
  // A plain decimal integer in [lo, hi]; `absent` when not present.
  StatusOr<int> Int(int lo, int hi, int absent) const;
  StatusOr<bool> Bool(bool absent = false) const;  // `absent` when not present
};

// `s` in double quotes for an error message: cut at 64 characters, and
// anything but printable ASCII escaped (\xNN, \", \\), so that no input can
// forge or garble the line a user sees.
std::string Quoted(std::string_view s);

}  // namespace regdisk::vm
