#include "build/dockerfile.h"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

namespace regdisk::build {
namespace {

constexpr size_t kMaxDockerfile = 1 << 20;

struct Line {
  int number;        // of the first physical line
  std::string text;  // continuations joined
};

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// Splits into logical lines: comments and blank lines dropped, a trailing
// backslash joins the next line (comment lines inside a continuation are
// skipped, as BuildKit does).
std::vector<Line> LogicalLines(std::string_view text) {
  std::vector<Line> out;
  std::string current;
  int start = 0, number = 0;
  bool continuing = false;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string raw(text.substr(pos, nl - pos));
    pos = nl + 1;
    ++number;
    if (!raw.empty() && raw.back() == '\r') raw.pop_back();
    std::string t = Trim(raw);
    if (t.starts_with("#") || (t.empty() && !continuing)) continue;
    if (!continuing) start = number;
    bool more = !t.empty() && t.back() == '\\';
    if (more) t.pop_back();
    current += (continuing && !t.empty() ? " " : "") + Trim(t);
    continuing = more;
    if (!continuing) {
      out.push_back({start, current});
      current.clear();
    }
    if (nl == text.size()) break;
  }
  if (continuing && !Trim(current).empty()) out.push_back({start, current});
  return out;
}

// Shell-like words: whitespace separated, double or single quotes group,
// backslash escapes the next character outside single quotes.
StatusOr<std::vector<std::string>> Words(std::string_view s) {
  std::vector<std::string> words;
  std::string w;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quote) {
      if (c == quote) {
        quote = 0;
      } else if (c == '\\' && quote == '"' && i + 1 < s.size()) {
        w += s[++i];
      } else {
        w += c;
      }
    } else if (c == '"' || c == '\'') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < s.size()) {
      w += s[++i];
      in_word = true;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      if (in_word) words.push_back(std::move(w));
      w.clear();
      in_word = false;
    } else {
      w += c;
      in_word = true;
    }
  }
  if (quote) return InvalidArgument("unterminated quote");
  if (in_word) words.push_back(std::move(w));
  return words;
}

// Normalises a relative context path: drops "." and empty components,
// refuses "..", absolute paths and URLs.
StatusOr<std::string> CleanSource(const std::string& src) {
  if (src.find("://") != std::string::npos) {
    return InvalidArgument("source \"" + src + "\" is a URL; only files from the build context can be added");
  }
  if (src.starts_with("/")) {
    return InvalidArgument("source \"" + src + "\" is absolute; name a file inside the build context");
  }
  if (src.find_first_of("*?[") != std::string::npos) {
    return InvalidArgument("source \"" + src + "\" has wildcards; name one file");
  }
  std::string out;
  size_t pos = 0;
  while (pos <= src.size()) {
    size_t slash = src.find('/', pos);
    if (slash == std::string::npos) slash = src.size();
    std::string part = src.substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") return InvalidArgument("source \"" + src + "\" leads outside the build context (\"..\")");
    out += (out.empty() ? "" : "/") + part;
  }
  if (out.empty()) return InvalidArgument("source \"" + src + "\" names the whole context; name a disk file");
  return out;
}

StatusOr<std::string> CleanDestination(const std::string& dst) {
  if (dst == "/disk" || dst == "/disk/") return std::string("/disk/");
  static const std::string kPrefix = "/disk/";
  std::string name = dst.starts_with(kPrefix) ? dst.substr(kPrefix.size()) : "";
  if (name.ends_with("/") || name.find('/') != std::string::npos || name.empty() || name == "." ||
      name == ".." || name.find('\0') != std::string::npos) {
    return InvalidArgument("destination \"" + dst + "\" must be /disk/ or /disk/NAME (disks live directly in /disk)");
  }
  return kPrefix + name;
}

// KEY=VALUE pairs; the legacy "KEY VALUE" form when there is no '='.
StatusOr<std::vector<std::pair<std::string, std::string>>> Pairs(const std::string& args, bool legacy_ok) {
  ASSIGN_OR_RETURN(auto words, Words(args));
  std::vector<std::pair<std::string, std::string>> out;
  if (words.empty()) return InvalidArgument("needs KEY=VALUE");
  if (legacy_ok && words[0].find('=') == std::string::npos) {
    std::string rest = Trim(args.substr(args.find(words[0]) + words[0].size()));
    out.emplace_back(words[0], rest);
    return out;
  }
  for (const auto& w : words) {
    auto eq = w.find('=');
    if (eq == std::string::npos || eq == 0) return InvalidArgument("\"" + w + "\" is not KEY=VALUE");
    out.emplace_back(w.substr(0, eq), w.substr(eq + 1));
  }
  return out;
}

StatusOr<std::vector<DockerfileCopy>> ParseCopy(const std::string& args, int line) {
  std::string rest = Trim(args);
  std::string chown;
  while (rest.starts_with("--")) {
    size_t end = rest.find_first_of(" \t");
    std::string flag = rest.substr(0, end);
    rest = end == std::string::npos ? "" : Trim(rest.substr(end));
    if (flag.starts_with("--chown=")) {
      chown = flag.substr(8);
    } else {
      return InvalidArgument("flag " + flag + " is not supported (only --chown)");
    }
  }
  std::vector<std::string> words;
  if (rest.starts_with("[")) {
    auto j = nlohmann::json::parse(rest, nullptr, false);
    if (!j.is_array()) return InvalidArgument("malformed JSON array");
    for (const auto& e : j) {
      if (!e.is_string()) return InvalidArgument("JSON array must hold strings");
      words.push_back(e.get<std::string>());
    }
  } else {
    ASSIGN_OR_RETURN(words, Words(rest));
  }
  if (words.size() < 2) return InvalidArgument("needs SOURCE... DESTINATION");
  ASSIGN_OR_RETURN(std::string dest, CleanDestination(words.back()));
  if (words.size() > 2 && dest != "/disk/") {
    return InvalidArgument("several sources need the destination /disk/");
  }
  std::vector<DockerfileCopy> out;
  for (size_t i = 0; i + 1 < words.size(); ++i) {
    ASSIGN_OR_RETURN(std::string src, CleanSource(words[i]));
    out.push_back({line, src, dest, chown});
  }
  return out;
}

}  // namespace

StatusOr<Dockerfile> ParseDockerfile(std::string_view text, std::string_view name) {
  std::string where(name);
  if (text.size() > kMaxDockerfile) return InvalidArgument(where + ": larger than 1 MiB");
  if (text.find('\0') != std::string_view::npos) return InvalidArgument(where + ": contains a NUL byte");
  Dockerfile df;
  bool have_from = false;
  for (const auto& l : LogicalLines(text)) {
    std::string at = where + ":" + std::to_string(l.number) + ": ";
    size_t sp = l.text.find_first_of(" \t");
    std::string keyword = l.text.substr(0, sp);
    std::string args = sp == std::string::npos ? "" : Trim(l.text.substr(sp));
    std::transform(keyword.begin(), keyword.end(), keyword.begin(),
                   [](unsigned char c) { return std::toupper(c); });
    auto fail = [&](const Status& s) { return InvalidArgument(at + keyword + ": " + s.message()); };
    if (keyword == "FROM") {
      if (have_from) return InvalidArgument(at + "a second FROM: multi-stage builds are not supported");
      auto words = Words(args);
      if (!words.ok()) return fail(words.status());
      if (words->size() != 1) return InvalidArgument(at + "FROM takes one image (no --platform or AS)");
      df.from = (*words)[0];
      have_from = true;
      continue;
    }
    if (!have_from) {
      if (keyword == "ARG") return InvalidArgument(at + "ARG is not supported");
      return InvalidArgument(at + keyword + " before FROM");
    }
    if (keyword == "ADD" || keyword == "COPY") {
      auto copies = ParseCopy(args, l.number);
      if (!copies.ok()) return fail(copies.status());
      df.copies.insert(df.copies.end(), copies->begin(), copies->end());
    } else if (keyword == "LABEL" || keyword == "ENV") {
      auto pairs = Pairs(args, keyword == "ENV");
      if (!pairs.ok()) return fail(pairs.status());
      auto& into = keyword == "LABEL" ? df.labels : df.env;
      into.insert(into.end(), pairs->begin(), pairs->end());
    } else {
      std::string shown = keyword.size() > 32 ? keyword.substr(0, 32) + "..." : keyword;
      return InvalidArgument(at + shown +
                             " is not supported (regdisk builds need only FROM, ADD/COPY into /disk, LABEL, ENV)");
    }
  }
  if (!have_from) return InvalidArgument(where + ": no FROM instruction");
  return df;
}

}  // namespace regdisk::build
