#include "vm/field.h"

#include <charconv>

namespace regdisk::vm {

// Fields are only ever copy-constructed: assigning a YAML::Node that holds a
// node would rebind the node inside the document.
Field Field::operator[](const char* key) const {
  std::string p = path.empty() ? key : path + "." + key;
  if (exists && node.IsMap()) {
    YAML::Node v = node[key];  // const lookup: does not insert
    if (v.IsDefined()) return Field{v, p, true};
  }
  return Field{YAML::Node(), p, false};
}

Field Field::operator[](size_t i) const {
  std::string p = path + "[" + std::to_string(i) + "]";
  if (exists && node.IsSequence() && i < node.size()) return Field{node[i], p, true};
  return Field{YAML::Node(), p, false};
}

Status Field::Error(const std::string& msg) const { return InvalidArgument(path + ": " + msg); }

Status Field::NeedMap() const {
  return !present() || node.IsMap() ? OkStatus() : Error("must be a mapping");
}

StatusOr<size_t> Field::SeqSize(bool required) const {
  if (!present()) return required ? StatusOr<size_t>(Error("required")) : size_t{0};
  if (!node.IsSequence()) return Error("must be a list");
  if (required && node.size() == 0) return Error("must not be empty");
  return node.size();
}

StatusOr<std::string> Field::Str(bool required) const {
  if (!present()) return required ? StatusOr<std::string>(Error("required")) : std::string();
  if (!node.IsScalar()) return Error("must be a string");
  if (required && node.Scalar().empty()) return Error("required");
  return node.Scalar();
}

StatusOr<int> Field::Int(int lo, int hi, int absent) const {
  if (!present()) return absent;
  Status bad = Error("must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
  if (!node.IsScalar()) return bad;
  const std::string& s = node.Scalar();
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < lo || v > hi) return bad;
  return v;
}

StatusOr<bool> Field::Bool(bool absent) const {
  if (!present()) return absent;
  std::string s = node.IsScalar() ? node.Scalar() : "";
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return Error("must be true or false");
}

std::string Quoted(std::string_view s) { return Quote(s, 64); }

}  // namespace regdisk::vm
