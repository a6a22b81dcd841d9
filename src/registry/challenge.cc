#include "registry/challenge.h"

#include <cctype>

namespace regdisk::registry {
namespace {

// RFC 7230 tchar, plus '/' (which token68 values and unquoted URLs use).
bool IsTokenChar(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~': case '/':
      return true;
    default:
      return false;
  }
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}
  bool done() const { return i_ >= s_.size(); }
  char peek() const { return done() ? '\0' : s_[i_]; }
  void SkipSpace() {
    while (!done() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }
  void SkipSpaceAndCommas() {
    while (!done() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == ',')) ++i_;
  }
  std::string_view Token() {
    size_t start = i_;
    while (!done() && IsTokenChar(s_[i_])) ++i_;
    return s_.substr(start, i_ - start);
  }
  // After the opening quote: up to the closing quote (or the end).
  std::string Quoted() {
    std::string out;
    while (!done()) {
      char c = s_[i_++];
      if (c == '"') break;
      if (c == '\\' && !done()) c = s_[i_++];
      out.push_back(c);
    }
    return out;
  }
  // Skips one character nothing else consumed, so the parse always advances.
  void Skip() { if (!done()) ++i_; }
  size_t pos() const { return i_; }
  void Rewind(size_t pos) { i_ = pos; }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

std::string Challenge::Param(const std::string& name) const {
  auto it = params.find(name);
  return it == params.end() ? "" : it->second;
}

std::vector<Challenge> ParseChallenges(std::string_view header) {
  std::vector<Challenge> out;
  Scanner sc(header);
  while (true) {
    sc.SkipSpaceAndCommas();
    if (sc.done()) break;
    std::string_view scheme = sc.Token();
    if (scheme.empty()) {
      sc.Skip();  // junk where a scheme should be
      continue;
    }
    Challenge ch;
    ch.scheme = Lower(scheme);
    // Parameters until a word that is not followed by '=' (the next scheme).
    while (true) {
      sc.SkipSpaceAndCommas();
      if (sc.done()) break;
      size_t start = sc.pos();
      std::string_view name = sc.Token();
      if (name.empty()) {
        sc.Skip();
        continue;
      }
      sc.SkipSpace();
      if (sc.peek() != '=') {
        sc.Rewind(start);  // a new challenge starts here
        break;
      }
      sc.Skip();  // '='
      sc.SkipSpace();
      std::string value;
      if (sc.peek() == '"') {
        sc.Skip();
        value = sc.Quoted();
      } else {
        value = std::string(sc.Token());
      }
      ch.params.emplace(Lower(name), std::move(value));
    }
    out.push_back(std::move(ch));
  }
  return out;
}

}  // namespace regdisk::registry
