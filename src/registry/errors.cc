#include "registry/errors.h"

#include <nlohmann/json.hpp>

namespace regdisk::registry {
namespace {

Code CodeForRegistryError(std::string_view code) {
  if (code == "UNAUTHORIZED" || code == "DENIED") return Code::kUnauthorized;
  if (code.ends_with("_UNKNOWN")) return Code::kNotFound;  // BLOB, MANIFEST, NAME, ...
  if (code == "TOOMANYREQUESTS" || code == "UNAVAILABLE") return Code::kUnavailable;
  if (code == "DIGEST_INVALID" || code == "SIZE_INVALID") return Code::kCorrupt;
  if (code == "UNSUPPORTED") return Code::kUnsupported;
  if (code.ends_with("_INVALID")) return Code::kInvalidArgument;  // MANIFEST, NAME, TAG, ...
  return Code::kInternal;
}

Code CodeForHttpStatus(long status) {
  if (status == 401 || status == 403) return Code::kUnauthorized;
  if (status == 404) return Code::kNotFound;
  if (status == 429 || status >= 500) return Code::kUnavailable;
  if (status >= 400) return Code::kInvalidArgument;
  return Code::kInternal;  // a success status the caller did not expect
}

// "CODE: message; CODE: message" from the registry's error document, or ""
// when the body is not one. Sets `code` from the first entry.
std::string DescribeErrors(std::string_view body, Code& code) {
  using nlohmann::json;
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return "";
  auto errors = j.find("errors");
  if (errors == j.end() || !errors->is_array()) return "";
  std::string out;
  for (const json& e : *errors) {
    if (!e.is_object()) continue;
    auto c = e.find("code");
    auto m = e.find("message");
    std::string code_text = c != e.end() && c->is_string() ? c->get<std::string>() : "";
    std::string message = m != e.end() && m->is_string() ? m->get<std::string>() : "";
    if (code_text.empty() && message.empty()) continue;
    if (out.empty()) code = CodeForRegistryError(code_text);
    if (!out.empty()) out += "; ";
    out += code_text.empty() ? message : message.empty() ? code_text : code_text + ": " + message;
  }
  return out;
}

}  // namespace

std::string Prefix(const std::string& registry, const std::string& repository) {
  return "registry " + registry + ": " + (repository.empty() ? "" : "repository " + repository + ": ");
}

std::string OneLine(std::string_view text, size_t max) {
  std::string out;
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    bool space = u < 0x20 || u == 0x7f;
    if (space && (out.empty() || out.back() == ' ')) continue;
    out.push_back(space ? ' ' : c);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  if (out.size() > max) out = out.substr(0, max) + "...";
  return out;
}

Status ResponseError(const std::string& registry, const std::string& repository,
                     const std::string& what, long http_status, std::string_view body) {
  Code code = CodeForHttpStatus(http_status);
  std::string cause = OneLine(DescribeErrors(body, code));
  if (cause.empty()) {
    cause = "HTTP " + std::to_string(http_status);
    std::string text = OneLine(body, 120);
    if (!text.empty() && text.find('<') == std::string::npos) cause += ": " + text;  // not HTML
  }
  return Status(code, Prefix(registry, repository) + what + ": " + cause);
}

std::string RedactText(std::string_view text, const std::vector<std::string>& secrets) {
  std::string out(text);
  for (const std::string& s : secrets) {
    if (s.empty()) continue;
    for (size_t p = out.find(s); p != std::string::npos; p = out.find(s, p + 3)) {
      out.replace(p, s.size(), "***");
    }
  }
  return out;
}

Status Redact(const Status& status, const std::vector<std::string>& secrets) {
  if (status.ok()) return status;
  return Status(status.code(), RedactText(status.message(), secrets));
}

}  // namespace regdisk::registry
