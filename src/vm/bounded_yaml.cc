#include "vm/bounded_yaml.h"

#include <yaml-cpp/eventhandler.h>

#include <optional>
#include <set>
#include <sstream>
#include <vector>

namespace regdisk::vm {
namespace {

constexpr size_t kMaxInput = 1 << 20;   // a VM spec is a few KiB
constexpr size_t kMaxDepth = 64;        // real specs nest about 10 deep
constexpr size_t kMaxNodes = 100000;    // bounds the memory of yaml-cpp's node graph
// A spec file holds a VM and what it refers to (Secrets, instancetypes,
// preferences): a handful of documents. 64 leaves room for a few VMs.
constexpr size_t kMaxDocuments = 64;

// Sees yaml-cpp's parse events before any node graph exists and refuses what
// a VM spec never needs and an attacker would use: anchors and aliases
// (billion laughs), deep nesting, huge node counts, duplicate or non-scalar
// mapping keys (two `image:` keys must not mean the first one).
class StructureCheck : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& m, YAML::anchor_t a) override { Begin(m, a, "~"); End(); }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { Refuse(m, "aliases are not allowed"); }
  void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t a,
                const std::string& v) override {
    Begin(m, a, v.c_str());
    End();
  }
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t a,
                       YAML::EmitterStyle::value) override { Push(m, a, false); }
  void OnSequenceEnd() override { Pop(); }
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t a,
                  YAML::EmitterStyle::value) override { Push(m, a, true); }
  void OnMapEnd() override { Pop(); }

 private:
  struct Frame {
    bool map;
    bool want_key = true;
    std::set<std::string> keys;
  };
  [[noreturn]] static void Refuse(const YAML::Mark& m, const std::string& what) {
    throw YAML::ParserException(m, what);
  }
  void Begin(const YAML::Mark& m, YAML::anchor_t anchor, const char* scalar) {
    if (anchor != YAML::NullAnchor) Refuse(m, "anchors are not allowed");
    if (++nodes_ > kMaxNodes) Refuse(m, "more than 100000 nodes");
    if (stack_.empty() || !stack_.back().map || !stack_.back().want_key) return;
    if (!scalar) Refuse(m, "mapping keys must be scalars");
    if (!stack_.back().keys.insert(scalar).second) Refuse(m, "duplicate key \"" + std::string(scalar) + "\"");
  }
  // A node is complete: in a mapping, keys and values alternate.
  void End() {
    if (!stack_.empty() && stack_.back().map) stack_.back().want_key = !stack_.back().want_key;
  }
  void Push(const YAML::Mark& m, YAML::anchor_t a, bool map) {
    Begin(m, a, nullptr);
    if (stack_.size() >= kMaxDepth) Refuse(m, "nesting deeper than 64");
    stack_.push_back({map});
  }
  void Pop() {
    stack_.pop_back();
    End();
  }
  std::vector<Frame> stack_;
  size_t nodes_ = 0;
};

Status YamlError(const YAML::Exception& e) {
  if (e.mark.is_null()) return InvalidArgument("yaml: " + e.msg);
  return InvalidArgument("yaml: line " + std::to_string(e.mark.line + 1) + ", column " +
                         std::to_string(e.mark.column + 1) + ": " + e.msg);
}

// Runs the structure check over the whole text: at least one document and at
// most `max_docs`; the node count is over all documents together.
Status CheckStructure(const std::string& text, size_t max_docs) {
  try {
    std::istringstream in(text);
    YAML::Parser parser(in);
    StructureCheck check;
    if (!parser.HandleNextDocument(check)) return InvalidArgument("yaml: empty document");
    for (size_t n = 1; parser.HandleNextDocument(check); ++n) {
      if (n == max_docs) {
        return InvalidArgument(max_docs == 1 ? std::string("yaml: more than one document")
                                             : "yaml: more than " + std::to_string(max_docs) + " documents");
      }
    }
    return OkStatus();
  } catch (const YAML::Exception& e) {
    return YamlError(e);
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("yaml: ") + e.what());
  }
}

// The seed design's disk items (see the header); nullopt if there are none.
std::optional<std::string> RepairDesignDisks(const std::string& text) {
  std::istringstream in(text);
  std::string out, line;
  bool changed = false;
  size_t key_col = std::string::npos;  // column of the keys of the current "- type:" item
  while (std::getline(in, line)) {
    size_t indent = line.find_first_not_of(' ');
    std::string_view rest = indent == std::string::npos ? "" : std::string_view(line).substr(indent);
    while (rest.ends_with(' ') || rest.ends_with('\r')) rest.remove_suffix(1);
    if (rest.starts_with("- type:")) {
      key_col = indent + 2;
    } else if (key_col != std::string::npos && !rest.empty() && indent < key_col) {
      key_col = std::string::npos;
    } else if (indent == key_col && (rest == "- source:" || rest == "- target:")) {
      line = std::string(indent, ' ') + std::string(rest.substr(2));
      changed = true;
    }
    out += line + "\n";
  }
  if (!changed) return std::nullopt;
  return out;
}

}  // namespace

namespace {

// The checks, then yaml-cpp's node graphs of every document.
StatusOr<std::vector<YAML::Node>> LoadChecked(std::string_view yaml, size_t max_docs) {
  if (yaml.size() > kMaxInput) return InvalidArgument("yaml: input larger than 1 MiB");
  for (size_t i = 0; i < yaml.size(); ++i) {
    unsigned char c = yaml[i];
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
      return InvalidArgument("yaml: control character at offset " + std::to_string(i));
    }
  }
  std::string text(yaml);
  Status st = CheckStructure(text, max_docs);
  if (!st.ok()) {
    std::optional<std::string> repaired = RepairDesignDisks(text);
    if (!repaired || !CheckStructure(*repaired, max_docs).ok()) return st;
    text = std::move(*repaired);
  }
  try {
    return YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    return YamlError(e);
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("yaml: ") + e.what());
  }
}

}  // namespace

StatusOr<YAML::Node> LoadBoundedYaml(std::string_view yaml) {
  ASSIGN_OR_RETURN(std::vector<YAML::Node> docs, LoadChecked(yaml, 1));
  if (docs.size() != 1) return InvalidArgument("yaml: empty document");
  return docs[0];
}

StatusOr<std::vector<YAML::Node>> LoadBoundedYamlDocuments(std::string_view yaml) {
  return LoadChecked(yaml, kMaxDocuments);
}

}  // namespace regdisk::vm
