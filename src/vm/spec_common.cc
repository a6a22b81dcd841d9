// The strict key walk and the checks the spec parser files share.
#include <algorithm>
#include <cctype>

#include "vm/spec_internal.h"

namespace regdisk::vm::internal {

Status CheckKeys(const Field& f, std::initializer_list<Key> keys) {
  if (!f.present() || !f.node.IsMap()) return OkStatus();
  for (const auto& kv : f.node) {
    std::string name = kv.first.Scalar();
    auto k = std::find_if(keys.begin(), keys.end(), [&](const Key& k) { return name == k.name; });
    // A key with odd characters is quoted (and escaped), as values are.
    bool plain = std::all_of(name.begin(), name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("_-./").find(c) != std::string_view::npos;
    });
    std::string key = plain ? name : Quoted(name);
    std::string path = f.path.empty() ? key : f.path + "." + key;
    if (k == keys.end()) return InvalidArgument(path + ": unknown field");
    if (k->rule == Rule::kRefuse) return InvalidArgument(path + ": not supported: " + k->reason);
  }
  return OkStatus();
}

std::optional<DiskBus> ParseBus(const std::string& s) {
  for (DiskBus b : {DiskBus::kVirtio, DiskBus::kSata, DiskBus::kScsi, DiskBus::kUsb, DiskBus::kIde}) {
    if (s == BusName(b)) return b;
  }
  return std::nullopt;
}

bool IsDnsLabel(const std::string& s, size_t max) {
  if (s.empty() || s.size() > max || s.front() == '-' || s.back() == '-') return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

bool IsDnsSubdomain(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  std::string_view rest = s;
  while (true) {
    size_t dot = rest.find('.');
    if (!IsDnsLabel(std::string(rest.substr(0, dot)), 63)) return false;
    if (dot == std::string_view::npos) return true;
    rest.remove_prefix(dot + 1);
  }
}

Status CheckName(const Field& f, const std::string& name, size_t max) {
  if (IsDnsLabel(name, max)) return OkStatus();
  return f.Error(Quoted(name) + " is not a valid name (lowercase letters, digits and '-', at most " +
                 std::to_string(max) + " characters)");
}

bool IsImageReference(const std::string& image) {
  bool ok = !image.empty() && image.size() <= 1024 && image.front() != '/' && image.front() != '-';
  for (char c : image) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                std::string_view("._-/:@").find(c) != std::string_view::npos);
  }
  return ok;
}

Status CheckImage(const Field& f, const std::string& image) {
  return IsImageReference(image) ? OkStatus() : f.Error("invalid image reference " + Quoted(image));
}

StatusOr<uint64_t> Bytes(const Field& f, uint64_t lo, uint64_t hi, const char* range) {
  ASSIGN_OR_RETURN(std::string text, f.Str(true));
  StatusOr<uint64_t> bytes = ParseQuantity(text);
  if (!bytes.ok()) return f.Error(bytes.status().message());
  if (*bytes < lo || *bytes > hi) return f.Error(Quoted(text) + " is out of range (" + range + ")");
  return *bytes;
}

}  // namespace regdisk::vm::internal
