#include "registry/auth.h"

#include <nlohmann/json.hpp>

#include "registry/errors.h"

namespace regdisk::registry {
namespace {

using Clock = std::chrono::steady_clock;
// A token is renewed when it has less than this left.
constexpr auto kTokenMargin = std::chrono::seconds(10);
// The token spec's default and minimum lifetime.
constexpr int64_t kMinTokenSeconds = 60;
// Replaced tokens kept for scrubbing.
constexpr size_t kMaxOldTokens = 16;
// Longest token accepted: real JWTs with many scopes stay under 8 KiB, and
// libcurl and most servers refuse header lines much over 16 KiB.
constexpr size_t kMaxTokenBytes = 16 << 10;

// RFC 7235 token68: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
bool IsToken68(std::string_view s) {
  size_t i = 0;
  auto body = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
  };
  while (i < s.size() && body(s[i])) ++i;
  if (i == 0) return false;
  while (i < s.size() && s[i] == '=') ++i;
  return i == s.size();
}

}  // namespace

StatusOr<TokenAnswer> ParseTokenAnswer(std::string_view body, std::string_view realm) {
  using nlohmann::json;
  std::string where = "the token server " + Quote(realm);
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  TokenAnswer answer;
  if (j.is_object()) {
    for (const char* field : {"token", "access_token"}) {
      auto f = j.find(field);
      if (f != j.end() && f->is_string() && !f->get_ref<const std::string&>().empty()) {
        answer.token = f->get<std::string>();
        break;
      }
    }
  }
  if (answer.token.empty()) return Unsupported(where + ": the answer holds no token");
  if (answer.token.size() > kMaxTokenBytes) {
    return Unsupported(where + ": the token is over " + std::to_string(kMaxTokenBytes) + " bytes");
  }
  if (!IsToken68(answer.token)) {
    return Unsupported(where + ": the token is not a token68 (RFC 7235), it holds characters a header must not");
  }
  answer.expires_in = kMinTokenSeconds;
  if (auto e = j.find("expires_in"); j.is_object() && e != j.end() && e->is_number_integer()) {
    answer.expires_in = std::max(kMinTokenSeconds, std::min<int64_t>(e->get<int64_t>(), 24 * 3600));
  }
  return answer;
}

Authenticator::Authenticator(std::string registry, std::optional<Credentials> credentials,
                             http::Client& client)
    : registry_(std::move(registry)), credentials_(std::move(credentials)), client_(client) {
  if (credentials_) basic_ = Base64Encode(credentials_->user + ":" + credentials_->password);
}

const std::string& Authenticator::user() const {
  static const std::string kNone;
  return credentials_ ? credentials_->user : kNone;
}

void Authenticator::SetChallenges(const std::vector<Challenge>& challenges) {
  std::lock_guard<std::mutex> lock(mu_);
  scheme_ = Scheme::kNone;
  for (const Challenge& c : challenges) {
    if (c.scheme == "bearer" && !c.Param("realm").empty()) {
      scheme_ = Scheme::kBearer;
      realm_ = c.Param("realm");
      service_ = c.Param("service");
      return;  // preferred over Basic
    }
    if (c.scheme == "basic") scheme_ = Scheme::kBasic;
  }
}

std::vector<std::string> Authenticator::Secrets() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out = old_tokens_;
  if (credentials_) {
    out.push_back(credentials_->password);
    out.push_back(basic_);
  }
  for (const auto& [scope, token] : tokens_) out.push_back(token.value);
  return out;
}

StatusOr<std::string> Authenticator::HeaderFor(const std::vector<std::string>& scopes, bool refresh) {
  std::lock_guard<std::mutex> lock(mu_);
  if (scheme_ == Scheme::kNone) return std::string();
  if (scheme_ == Scheme::kBasic) {
    return credentials_ ? "Authorization: Basic " + basic_ : std::string();
  }
  std::string key;
  for (const std::string& s : scopes) key += (key.empty() ? "" : " ") + s;
  auto it = tokens_.find(key);
  if (it != tokens_.end() && (refresh || it->second.expires - kTokenMargin < Clock::now())) {
    if (old_tokens_.size() >= kMaxOldTokens) old_tokens_.erase(old_tokens_.begin());
    old_tokens_.push_back(it->second.value);
    tokens_.erase(it);
    it = tokens_.end();
  }
  if (it == tokens_.end()) {
    ASSIGN_OR_RETURN(Token token, Fetch(scopes));
    it = tokens_.emplace(key, std::move(token)).first;
  }
  return "Authorization: Bearer " + it->second.value;
}

StatusOr<Authenticator::Token> Authenticator::Fetch(const std::vector<std::string>& scopes) {
  std::string realm_host = http::HostOf(realm_);
  std::string where = "registry " + registry_ + ": getting a token from " + OneLine(realm_host);
  bool https = realm_.starts_with("https://");
  if (!https && !realm_.starts_with("http://")) {
    return Unsupported(where + ": the realm \"" + OneLine(realm_, 100) + "\" is not an http(s) URL");
  }
  if (!https && credentials_ && client_.options().tls_verify && !http::IsLoopback(realm_host)) {
    return Unauthorized(where + ": refusing to send credentials over plain http");
  }
  http::Request req;
  req.url = realm_ + (realm_.find('?') == std::string::npos ? "?" : "&");
  req.url += "service=" + http::Escape(service_);
  for (const std::string& s : scopes) req.url += "&scope=" + http::Escape(s);
  if (credentials_) {
    req.url += "&account=" + http::Escape(credentials_->user);
    req.headers.push_back("Authorization: Basic " + basic_);
  }
  auto resp = client_.Do(req);
  if (!resp.ok()) return Status(resp.status().code(), where + ": " + resp.status().message());
  if (resp->status == 401 || resp->status == 403) {
    return Unauthorized(where + ": HTTP " + std::to_string(resp->status) + ": " +
                        (credentials_ ? "the credentials of user \"" + OneLine(credentials_->user, 64) +
                                            "\" were refused"
                                      : "anonymous access refused; log in first"));
  }
  if (resp->status != 200) {
    Status s = ResponseError(registry_, "", "getting a token from " + OneLine(realm_host),
                             resp->status, RedactText(resp->body, {credentials_ ? credentials_->password : "", basic_}));
    return s;
  }
  auto answer = ParseTokenAnswer(resp->body, realm_);
  if (!answer.ok()) return Status(answer.status().code(), "registry " + registry_ + ": " + answer.status().message());
  Token token;
  token.value = std::move(answer->token);
  token.expires = Clock::now() + std::chrono::seconds(answer->expires_in);
  return token;
}

}  // namespace regdisk::registry
