#include "registry/registry.h"

#include <curl/curl.h>
#include <dirent.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <ctime>
#include <thread>

#include "registry/connection.h"
#include "registry/errors.h"
#include "util/fs.h"

namespace regdisk::registry {
namespace {

constexpr auto kMaxBackoff = std::chrono::milliseconds(30'000);
constexpr auto kMaxRetryAfter = std::chrono::milliseconds(60'000);

bool RetryableStatus(long s) { return s == 429 || s == 500 || s == 502 || s == 503 || s == 504; }

// The concatenated *.crt files of `dir` (sorted by name); "" when the
// directory does not exist and need not.
StatusOr<std::string> ReadCaDir(const std::string& dir, bool must_exist) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT && !must_exist) return std::string();
    return IoError("reading CA directory " + dir, errno);
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() > 4 && name.ends_with(".crt")) names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  std::string pem;
  for (const std::string& name : names) {
    ASSIGN_OR_RETURN(std::string cert, ReadFile(dir + "/" + name, 1 << 20));
    pem += cert + "\n";
  }
  return pem;
}

}  // namespace

Registry::Registry(std::string host, std::string endpoint, Options options,
                   std::optional<Credentials> credentials, std::string ca_pem)
    : host_(std::move(host)), endpoint_(std::move(endpoint)), options_(std::move(options)),
      client_(http::ClientOptions{.tls_verify = options_.tls_verify,
                                  .ca_pem = std::move(ca_pem),
                                  .connect_timeout = options_.connect_timeout,
                                  .stall_timeout = options_.stall_timeout}),
      auth_(host_, std::move(credentials), client_) {}

StatusOr<std::shared_ptr<Registry>> Registry::Connect(const std::string& host, const Options& options) {
  std::optional<Credentials> credentials;
  if (!options.credentials.empty()) {
    auto c = ParseUserPassword(options.credentials);
    if (!c.ok()) return c.status().Annotate("registry " + host);
    credentials = std::move(*c);
  } else {
    ASSIGN_OR_RETURN(credentials, FindCredentials(host));
  }
  return ConnectAs(host, options, std::move(credentials));
}

StatusOr<std::shared_ptr<Registry>> Registry::ConnectAs(const std::string& host, const Options& options,
                                                        std::optional<Credentials> credentials) {
  bool bad = host.empty();
  for (char c : host) bad = bad || c == '/' || c == '@' || std::isspace(static_cast<unsigned char>(c));
  if (bad) return InvalidArgument("invalid registry host \"" + OneLine(host, 100) + "\"");
  std::string dir = options.cert_dir.empty() ? "/etc/containers/certs.d/" + host : options.cert_dir;
  ASSIGN_OR_RETURN(std::string ca_pem, ReadCaDir(dir, !options.cert_dir.empty()));
  std::string endpoint = host == "docker.io" ? "registry-1.docker.io" : host;
  std::shared_ptr<Registry> r(
      new Registry(host, endpoint, options, std::move(credentials), std::move(ca_pem)));
  RETURN_IF_ERROR(r->Ping());
  return r;
}

Status Registry::Ping() {
  bool plain_ok = !options_.tls_verify || http::IsLoopback(endpoint_);
  Call call{.url = "/v2/", .retry = !plain_ok, .what = "pinging /v2/"};
  base_url_ = "https://" + endpoint_;
  StatusOr<http::Response> r = Do(call);
  Code failure = r.ok() ? Code::kOk : r.status().code();
  if (plain_ok && (failure == Code::kUnavailable || failure == Code::kUnsupported)) {
    base_url_ = "http://" + endpoint_;
    call.retry = true;
    StatusOr<http::Response> plain = Do(call);
    bool answered = plain.ok() && (plain->status == 200 || plain->status == 401);
    if (answered || failure == Code::kUnsupported) r = std::move(plain);
  }
  if (!r.ok()) return r.status();
  if (r->status == 401) {
    std::vector<Challenge> challenges;
    for (const std::string& h : r->Headers("www-authenticate")) {
      for (Challenge& c : ParseChallenges(h)) challenges.push_back(std::move(c));
    }
    auth_.SetChallenges(challenges);
    return OkStatus();
  }
  if (r->status != 200) {
    Status s = ResponseError(call, *r);
    if (RetryableStatus(r->status)) return s;  // a registry, unwell
    return Status(s.code(), s.message() + " (is this a registry?)");
  }
  return OkStatus();
}

Status Registry::VerifyCredentials() {
  if (!auth_.has_credentials()) return InvalidArgument("registry " + host_ + ": no credentials to check");
  if (auth_.bearer()) return Scrub(auth_.HeaderFor({}, /*refresh=*/true).status());
  Call call{.url = "/v2/", .what = "logging in"};
  ASSIGN_OR_RETURN(http::Response r, Do(call));
  return r.status == 200 ? OkStatus() : ResponseError(call, r);
}

template <typename T, typename SendFn, typename Head>
StatusOr<T> Registry::Send(const Call& call, SendFn send, Head head) {
  std::string url = call.url.starts_with("/") ? base_url_ + call.url : call.url;
  // Credentials and tokens go only to this registry, never to a Location
  // elsewhere (blob storage).
  bool authorize = url.starts_with(base_url_ + "/");
  // A streamed body is gone once sent: the call goes once.
  bool once = static_cast<bool>(call.body_source);
  bool refresh = false, refreshed = once;
  for (int attempt = 0;;) {
    bool may_retry = call.retry && !once && attempt < options_.retry_times;
    http::Request req{.method = call.method, .url = url, .headers = call.headers, .body = call.body,
                      .body_source = call.body_source, .follow_redirects = call.follow_redirects, .max_body = call.max_body};
    if (authorize) {
      auto header = auth_.HeaderFor(call.scopes, refresh);
      refresh = false;
      if (!header.ok()) {
        if (header.status().code() == Code::kUnavailable && may_retry) {
          Backoff(attempt++, nullptr);
          continue;
        }
        return Scrub(header.status());
      }
      if (!header->empty()) req.headers.push_back(*header);
    }
    StatusOr<T> r = send(req);
    if (!r.ok()) {
      if (r.status().code() == Code::kUnavailable && may_retry) {
        Backoff(attempt++, nullptr);
        continue;
      }
      return TransportError(call, r.status());
    }
    long status = head(*r).status;
    if (status == 401 && authorize && auth_.bearer() && !refreshed) {
      refresh = refreshed = true;
      continue;
    }
    if (RetryableStatus(status) && may_retry) {
      Backoff(attempt++, &head(*r));
      continue;
    }
    return r;
  }
}

StatusOr<http::Response> Registry::Do(const Call& call) {
  return Send<http::Response>(
      call, [&](const http::Request& req) { return client_.Do(req); },
      [](const http::Response& r) -> const http::Response& { return r; });
}

StatusOr<std::unique_ptr<http::Stream>> Registry::Open(const Call& call) {
  return Send<std::unique_ptr<http::Stream>>(
      call, [&](const http::Request& req) { return client_.Open(req); },
      [](const std::unique_ptr<http::Stream>& s) -> const http::Response& { return s->head(); });
}

Status Registry::ResponseError(const Call& call, const http::Response& response) {
  std::vector<std::string> secrets = auth_.Secrets();
  Status s = registry::ResponseError(host_, call.repository, call.what, response.status,
                                     RedactText(response.body, secrets));
  if (response.status == 401) {
    std::string hint = !auth_.has_credentials()
                           ? "; no credentials for " + host_ + " (log in first)"
                       : auth_.bearer() ? "; user \"" + OneLine(auth_.user(), 64) + "\" has no access"
                                        : "; the credentials of user \"" + OneLine(auth_.user(), 64) +
                                              "\" were refused";
    s = Status(s.code(), s.message() + hint);
  }
  return Redact(s, secrets);
}

Status Registry::TransportError(const Call& call, const Status& cause) {
  std::string where = call.repository.empty() ? "" : " (repository " + call.repository + ": " + call.what + ")";
  std::string message;
  switch (cause.code()) {
    case Code::kUnavailable:
      message = "registry " + host_ + " is unreachable: " + cause.message() + where;
      break;
    case Code::kUnsupported:
      message = "registry " + host_ + ": TLS handshake failed: " + cause.message() + where;
      break;
    case Code::kUnauthorized:
      message = "registry " + host_ + ": TLS certificate not trusted (" + cause.message() +
                "); add its CA to a cert_dir or turn tls_verify off";
      break;
    default:
      message = Prefix(host_, call.repository) + call.what + ": " + cause.message();
  }
  return Scrub(Status(cause.code(), OneLine(message, 400)));
}

Status Registry::Scrub(const Status& status) const { return Redact(status, auth_.Secrets()); }

std::string Registry::Resolve(const std::string& location) const {
  if (location.starts_with("https://") || location.starts_with("http://")) return location;
  return base_url_ + (location.starts_with("/") ? "" : "/") + location;
}

void Registry::Backoff(int attempt, const http::Response* response) const {
  auto delay = std::min<std::chrono::milliseconds>(options_.retry_delay * (1LL << std::min(attempt, 16)),
                                                   kMaxBackoff);
  std::string after = response ? response->Header("retry-after") : "";
  if (!after.empty()) {
    long long seconds = -1;
    if (std::all_of(after.begin(), after.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
      seconds = after.size() > 6 ? 1'000'000 : std::stoll(after);
    } else if (time_t t = curl_getdate(after.c_str(), nullptr); t > 0) {
      seconds = static_cast<long long>(t - std::time(nullptr));
    }
    if (seconds >= 0) delay = std::min<std::chrono::milliseconds>(std::chrono::seconds(seconds), kMaxRetryAfter);
  }
  std::this_thread::sleep_for(delay);
}

Status Login(const std::string& host, const std::string& user, const std::string& password,
             const Options& options) {
  if (user.empty() || user.find(':') != std::string::npos) {
    return InvalidArgument("login to " + host + ": the user name must be non-empty and without ':'");
  }
  Credentials credentials{user, password};
  ASSIGN_OR_RETURN(auto registry, Registry::ConnectAs(host, options, credentials));
  RETURN_IF_ERROR(registry->VerifyCredentials());
  return StoreCredentials(AuthFileForWriting(), host, credentials);
}

Status Logout(const std::string& host) { return RemoveCredentials(AuthFileForWriting(), host); }

}  // namespace regdisk::registry
