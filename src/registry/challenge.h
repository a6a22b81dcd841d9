// WWW-Authenticate challenges (RFC 7235 section 4.1), as registries send
// them on 401:
//   Bearer realm="https://auth.example/token",service="registry",scope="repository:a:pull"
//   Basic realm="Registry Realm"
// The input comes from the network, so the parser accepts anything: it never
// fails, never reads out of bounds, and skips what it cannot make sense of
// (this is fuzzed by fuzz/auth_challenge_fuzz.cc). Pure functions; thread-safe.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace regdisk::registry {

struct Challenge {
  std::string scheme;                         // lowercased: "basic", "bearer"
  std::map<std::string, std::string> params;  // names lowercased, values unquoted

  // The value of `name` (lowercase), or "" when absent.
  std::string Param(const std::string& name) const;
};

// Parses one header value, which may hold several challenges:
//   Basic realm="a", Bearer realm="b",service="c"
// Quoted strings may contain commas and backslash escapes. A parameter named
// twice keeps its first value.
std::vector<Challenge> ParseChallenges(std::string_view header);

}  // namespace regdisk::registry
