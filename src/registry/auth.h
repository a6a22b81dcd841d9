// How requests to one registry are authorised, after its /v2/ ping:
//   no challenge  nothing is sent;
//   Basic         "Authorization: Basic base64(user:password)" on every request;
//   Bearer        a token from the challenge's realm (the Docker token
//                 protocol: GET realm?service=S&scope=repository:NAME:pull[,push]
//                 with Basic credentials when there are any; the answer's
//                 "token" or "access_token"), cached per scope until it expires.
// Credentials go only to https, or to plain http when TLS verification is off
// or the realm is on a loopback address.
//
// Thread-safe: the token cache is locked; a token fetch holds the lock, so
// threads wanting the same scope wait for one fetch instead of racing.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "registry/auth_file.h"
#include "registry/challenge.h"
#include "registry/http.h"

namespace regdisk::registry {

// The Docker token server's answer, parsed: the "token" (or "access_token")
// must be token68 (RFC 7235: letters, digits, "-._~+/", then "="s) and at
// most kMaxTokenBytes, since it goes into an Authorization header as is;
// anything else (a CR/LF would add headers of the server's choosing) is
// refused with an error naming `realm`. "expires_in" is clamped to
// [60 s, 24 h]. Never throws; fuzzed by fuzz/auth_token_fuzz.cc.
struct TokenAnswer {
  std::string token;
  int64_t expires_in = 0;  // seconds
};
StatusOr<TokenAnswer> ParseTokenAnswer(std::string_view body, std::string_view realm);

class Authenticator {
 public:
  // `registry` names the registry in error messages.
  Authenticator(std::string registry, std::optional<Credentials> credentials, http::Client& client);

  // From the ping's 401 answer; without a call (or with none usable) no
  // Authorization header is sent.
  void SetChallenges(const std::vector<Challenge>& challenges);
  bool bearer() const { return scheme_ == Scheme::kBearer; }
  bool has_credentials() const { return credentials_.has_value(); }
  const std::string& user() const;

  // The header line ("Authorization: ...") for a request that needs
  // `scopes` ("repository:a/b:pull"), or "" when none is needed. `refresh`
  // drops a cached token first (after a 401).
  StatusOr<std::string> HeaderFor(const std::vector<std::string>& scopes, bool refresh);

  // Every secret this object knows (password, encoded credentials, tokens),
  // for scrubbing error messages.
  std::vector<std::string> Secrets() const;

 private:
  enum class Scheme { kNone, kBasic, kBearer };
  struct Token {
    std::string value;
    std::chrono::steady_clock::time_point expires;
  };
  StatusOr<Token> Fetch(const std::vector<std::string>& scopes);

  std::string registry_;
  std::optional<Credentials> credentials_;
  std::string basic_;  // base64(user:password)
  http::Client& client_;
  Scheme scheme_ = Scheme::kNone;
  std::string realm_, service_;
  mutable std::mutex mu_;
  std::map<std::string, Token> tokens_;  // by space-joined scopes
  std::vector<std::string> old_tokens_;  // replaced ones, still scrubbed
};

}  // namespace regdisk::registry
