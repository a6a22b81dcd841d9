#include "oci/reference.h"

#include <cstdio>

namespace regdisk::oci {
namespace {

constexpr std::string_view kDockerHub = "docker.io";
constexpr std::string_view kLegacyDockerHub = "index.docker.io";
constexpr std::string_view kOfficialPrefix = "library/";
constexpr size_t kMaxNameLength = 255;
constexpr size_t kMaxTagLength = 128;

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return IsLowerAlnum(c) || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool IsWord(char c) { return IsAlnum(c) || c == '_'; }



// [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*
bool ValidPathComponent(std::string_view c) {
  size_t i = 0;
  while (i < c.size()) {
    if (!IsLowerAlnum(c[i])) return false;
    while (i < c.size() && IsLowerAlnum(c[i])) ++i;
    if (i == c.size()) return true;
    size_t start = i;
    while (i < c.size() && !IsLowerAlnum(c[i])) ++i;
    std::string_view sep = c.substr(start, i - start);
    bool dashes = sep.find_first_not_of('-') == std::string_view::npos;
    if (!(sep == "." || sep == "_" || sep == "__" || dashes)) return false;
    if (i == c.size()) return false;  // trailing separator
  }
  return !c.empty();
}

// A DNS name ([a-zA-Z0-9] or [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9], joined by
// '.') or a bracketed IPv6 address, then an optional :port.
bool ValidDomain(std::string_view d) {
  std::string_view host = d, port;
  if (d.starts_with('[')) {
    size_t close = d.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (char c : d.substr(1, close - 1)) {
      if (!IsHex(c) && c != ':') return false;
    }
    host = {};
    std::string_view rest = d.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return false;
      port = rest.substr(1);
      if (port.empty()) return false;
    }
  } else if (size_t colon = d.find(':'); colon != std::string_view::npos) {
    host = d.substr(0, colon);
    port = d.substr(colon + 1);
    if (port.empty() || host.empty()) return false;
  }
  for (char c : port) {
    if (!IsDigit(c)) return false;
  }
  while (!host.empty()) {
    size_t dot = host.find('.');
    std::string_view label = host.substr(0, dot);
    if (label.empty() || !IsAlnum(label.front()) || !IsAlnum(label.back())) return false;
    for (char c : label) {
      if (!IsAlnum(c) && c != '-') return false;
    }
    if (dot == std::string_view::npos) break;
    host = host.substr(dot + 1);
    if (host.empty()) return false;  // trailing '.'
  }
  return true;
}

// [\w][\w.-]{0,127}
bool ValidTag(std::string_view t) {
  if (t.empty() || t.size() > kMaxTagLength || !IsWord(t[0])) return false;
  for (char c : t) {
    if (!IsWord(c) && c != '.' && c != '-') return false;
  }
  return true;
}

// Docker's rule for the first component of a name.
bool LooksLikeDomain(std::string_view first) {
  return first.find_first_of(".:") != std::string_view::npos || first == "localhost";
}

}  // namespace

StatusOr<Reference> Reference::Parse(std::string_view s) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("invalid reference " + Quote(s) + ": " + why);
  };
  if (s.empty()) return bad("empty reference");
  if (s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string_view::npos) {
    return bad("a 64-digit hex string is an image ID, not a repository name");
  }

  Reference ref;
  std::string_view name = s;
  if (size_t at = s.find('@'); at != std::string_view::npos) {
    name = s.substr(0, at);
    auto digest = Digest::Parse(s.substr(at + 1));
    if (!digest.ok()) return bad(OneLine(digest.status().message()));
    ref.digest = *digest;
  }
  // A ':' after the last '/' starts the tag; earlier ones belong to a port.
  if (size_t colon = name.rfind(':'); colon != std::string_view::npos) {
    size_t slash = name.rfind('/');
    if (slash == std::string_view::npos || colon > slash) {
      std::string_view tag = name.substr(colon + 1);
      if (tag.empty()) return bad("empty tag after ':'");
      if (!ValidTag(tag)) {
        return bad("invalid tag " + Quote(tag) +
                   " (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')");
      }
      ref.tag = std::string(tag);
      name = name.substr(0, colon);
    }
  }
  if (name.empty()) return bad("missing repository name");

  std::string_view repo = name;
  ref.registry = kDockerHub;
  if (size_t slash = name.find('/');
      slash != std::string_view::npos && LooksLikeDomain(name.substr(0, slash))) {
    std::string_view domain = name.substr(0, slash);
    if (!ValidDomain(domain)) return bad("invalid registry host " + Quote(domain));
    if (domain != kLegacyDockerHub) ref.registry = domain;
    repo = name.substr(slash + 1);
  }
  for (size_t start = 0;;) {
    size_t slash = repo.find('/', start);
    std::string_view component = repo.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (component.empty()) return bad("empty path component (leading, trailing or double '/')");
    if (!ValidPathComponent(component)) {
      for (char c : repo) {
        if (c >= 'A' && c <= 'Z') return bad("repository name must be lowercase");
      }
      return bad("invalid path component " + Quote(component) +
                 " (lowercase letters and digits, joined by '.', '_', '__' or dashes)");
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  ref.repository = repo;
  if (ref.registry == kDockerHub && repo.find('/') == std::string_view::npos) {
    ref.repository = std::string(kOfficialPrefix) + ref.repository;
  }
  if (ref.name().size() > kMaxNameLength) {
    return bad("name " + Quote(ref.name()) + " is longer than 255 characters");
  }
  if (ref.tag.empty() && !ref.digest) ref.tag = "latest";
  return ref;
}

std::string Reference::name() const { return registry + "/" + repository; }

std::string Reference::str() const {
  std::string s = name();
  if (!tag.empty()) s += ":" + tag;
  if (digest) s += "@" + digest->str();
  return s;
}

std::string Reference::identifier() const { return digest ? digest->str() : tag; }

std::string Reference::familiar() const {
  std::string s = name();
  if (registry == kDockerHub) {
    std::string_view repo = repository;
    if (repo.starts_with(kOfficialPrefix) &&
        repo.find('/', kOfficialPrefix.size()) == std::string_view::npos) {
      repo.remove_prefix(kOfficialPrefix.size());
    }
    // Keep "docker.io/" where dropping it would make the first component
    // read as a registry host ("docker.io/localhost/x").
    size_t slash = repo.find('/');
    if (slash == std::string_view::npos || !LooksLikeDomain(repo.substr(0, slash))) s = repo;
  }
  if (!tag.empty()) s += ":" + tag;
  if (digest) s += "@" + digest->str();
  return s;
}

Reference Reference::WithTag(std::string t) const {
  Reference r = *this;
  r.tag = std::move(t);
  r.digest.reset();
  return r;
}

Reference Reference::WithDigest(const Digest& d) const {
  Reference r = *this;
  r.digest = d;
  return r;
}

}  // namespace regdisk::oci
