#include "registry/http.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>

#include "util/fs.h"

namespace regdisk::registry::http {

// One pooled connection: an easy handle and the multi handle that drives it
// (and holds its connection cache).
struct Connection {
  CURL* easy = curl_easy_init();
  CURLM* multi = curl_multi_init();
  ~Connection() {
    curl_multi_cleanup(multi);
    curl_easy_cleanup(easy);
  }
};

namespace {

// Idle connections kept per Client (one per thread that used it, roughly).
constexpr size_t kMaxIdle = 8;
// Body bytes a Stream buffers before it pauses libcurl.
constexpr size_t kStreamBuffer = 2 << 20;
// libcurl's receive and send buffer sizes (the defaults are 16 and 64 KiB).
constexpr long kRecvBuffer = 256 << 10;
constexpr long kSendBuffer = 1 << 20;
// Error bodies are cut here.
constexpr size_t kMaxErrorBody = 64 << 10;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// Bytes never allowed in a header line we send (HTAB is, in values) or a
// URL: CTLs and DEL; a URL also no space.
bool HasControl(std::string_view s, bool url) {
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && u != '\t') || u == 0x7f || (url && (u == ' ' || u == '\t'))) return true;
  }
  return false;
}

// Every request is checked here, whatever built it.
Status CheckRequest(const Request& r) {
  if (HasControl(r.url, true)) {  // not shown: a URL may carry a signature
    return InvalidArgument("refusing a request URL for " + Quote(HostOf(r.url), 80) +
                           " with control characters (from the server's answer?)");
  }
  for (const std::string& h : r.headers) {
    if (HasControl(h, false)) {
      return InvalidArgument("refusing a " + Quote(h.substr(0, h.find(':')), 40) +
                             " header with control characters (from the server's answer?)");
    }
  }
  return OkStatus();
}

}  // namespace

// One request on one pooled connection, driven by the caller's thread.
class Exchange {
 public:
  Exchange(Client& client, const Request& request, bool streaming)
      : client_(client), conn_(client.Acquire()), streaming_(streaming),
        follow_(request.follow_redirects), max_body_(request.max_body),
        stall_timeout_(std::max<std::chrono::seconds>(client.options().stall_timeout, std::chrono::seconds(1))) {
    errbuf_[0] = '\0';
    Configure(request);
    curl_multi_add_handle(conn_->multi, conn_->easy);
  }

  ~Exchange() {
    curl_multi_remove_handle(conn_->multi, conn_->easy);
    curl_slist_free_all(headers_);
    client_.Release(std::move(conn_));
  }

  Response& response() { return response_; }
  bool done() const { return done_; }
  bool headers_done() const { return headers_done_; }

  // Drives the transfer until `stop()` holds or it ends. A transfer that
  // moves no byte either way for stall_timeout is aborted (the time between
  // Pump calls is the reader's, not the peer's); libcurl's low-speed limit
  // (below 1 KiB/s, averaged over several seconds) catches trickles.
  template <typename Stop>
  void Pump(Stop stop) {
    using Clock = std::chrono::steady_clock;
    auto last_progress = Clock::now();
    curl_off_t last_bytes = -1;
    while (!done_ && !stop()) {
      int running = 0;
      if (curl_multi_perform(conn_->multi, &running) != CURLM_OK) {
        Finish(CURLE_FAILED_INIT);
        break;
      }
      int queued = 0;
      while (CURLMsg* m = curl_multi_info_read(conn_->multi, &queued)) {
        if (m->msg == CURLMSG_DONE) Finish(m->data.result);
      }
      if (done_ || stop()) break;
      curl_off_t down = 0, up = 0;
      curl_easy_getinfo(conn_->easy, CURLINFO_SIZE_DOWNLOAD_T, &down);
      curl_easy_getinfo(conn_->easy, CURLINFO_SIZE_UPLOAD_T, &up);
      auto now = Clock::now();
      if (down + up + sourced_ != last_bytes) {  // the body source's time is not the peer's
        last_bytes = down + up + sourced_;
        last_progress = now;
      } else if (now - last_progress >= stall_timeout_) {
        std::snprintf(errbuf_, sizeof errbuf_, "no data moved for %lld s (stalled)",
                      static_cast<long long>(stall_timeout_.count()));
        Finish(CURLE_OPERATION_TIMEDOUT);
        break;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(stall_timeout_ - (now - last_progress));
      int wait = static_cast<int>(std::clamp<long long>(left.count(), 1, 1000));
      curl_multi_poll(conn_->multi, nullptr, 0, wait, nullptr);
    }
  }

  // The transport failure, if the transfer ended with one.
  Status TransportStatus() const {
    if (result_ == CURLE_OK) return OkStatus();
    if (too_large_) {
      return InvalidArgument("response larger than " + std::to_string(max_body_) + " bytes");
    }
    std::string cause = errbuf_[0] ? errbuf_ : curl_easy_strerror(result_);
    if (os_errno_ != 0 && (result_ == CURLE_COULDNT_CONNECT || result_ == CURLE_RECV_ERROR ||
                           result_ == CURLE_SEND_ERROR)) {
      cause = std::strerror(static_cast<int>(os_errno_));
    }
    switch (result_) {
      case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_RESOLVE_PROXY:
      case CURLE_COULDNT_CONNECT: case CURLE_OPERATION_TIMEDOUT: case CURLE_SEND_ERROR:
      case CURLE_RECV_ERROR: case CURLE_GOT_NOTHING: case CURLE_PARTIAL_FILE:
      case CURLE_HTTP2: case CURLE_HTTP2_STREAM:
      case CURLE_SEND_FAIL_REWIND:  // a dead reused connection, and a body_source that cannot go back
        return Unavailable(cause);
      case CURLE_SSL_CONNECT_ERROR:
        return Unsupported(cause);
      case CURLE_PEER_FAILED_VERIFICATION: case CURLE_SSL_CACERT_BADFILE:
        return Unauthorized(cause);
      default:
        return Internal(cause);
    }
  }

  // Stream reading: buffered body bytes, resuming libcurl when drained.
  StatusOr<size_t> Read(void* out, size_t len) {
    while (pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
      if (paused_) {
        paused_ = false;
        curl_easy_pause(conn_->easy, CURLPAUSE_CONT);  // may deliver held data at once
        continue;
      }
      if (done_) {
        RETURN_IF_ERROR(TransportStatus());
        return 0;
      }
      Pump([&] { return pos_ < buf_.size() || paused_; });
    }
    size_t n = std::min(len, buf_.size() - pos_);
    std::memcpy(out, buf_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  void Configure(const Request& r) {
    CURL* e = conn_->easy;
    const ClientOptions& o = client_.options();
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, r.url.c_str());
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "regdisk/0.1");
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf_);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, static_cast<long>(o.connect_timeout.count()));
    if (r.direct) curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    if (r.total_timeout.count() > 0) {
      curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(r.total_timeout.count()));
    }
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, static_cast<long>(o.stall_timeout.count()));
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, kRecvBuffer);
    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, kSendBuffer);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, o.tls_verify ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, o.tls_verify ? 2L : 0L);
    if (!client_.ca_bundle().empty()) {
      curl_blob blob{const_cast<char*>(client_.ca_bundle().data()), client_.ca_bundle().size(),
                     CURL_BLOB_NOCOPY};
      curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (r.follow_redirects) {
      // Never from https down to http while TLS is verified. libcurl drops
      // the Authorization header when a redirect leaves the host.
      bool plain_ok = !o.tls_verify || r.url.starts_with("http://");
      curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
      curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
      curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, plain_ok ? "http,https" : "https");
    }
    headers_ = curl_slist_append(headers_, "Expect:");  // no 100-continue round trip
    bool typed = false;
    for (const std::string& h : r.headers) {
      headers_ = curl_slist_append(headers_, h.c_str());
      typed = typed || Lower(h).starts_with("content-type:");
    }
    if (!typed) headers_ = curl_slist_append(headers_, "Content-Type:");  // not form-urlencoded
    if (r.body_source) headers_ = curl_slist_append(headers_, "Transfer-Encoding: chunked");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers_);
    if (r.method == "HEAD") {
      curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (r.method == "PUT" || r.method == "PATCH" || r.method == "POST") {
      curl_easy_setopt(e, CURLOPT_POST, 1L);
      if (r.body_source) {  // no size: chunked (the header above)
        source_ = r.body_source;
        curl_easy_setopt(e, CURLOPT_READFUNCTION, &Exchange::OnRead);
        curl_easy_setopt(e, CURLOPT_READDATA, this);
      } else {
        // Never a null pointer: libcurl would read the body from stdin.
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r.body.empty() ? "" : r.body.data());
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
      }
      if (r.method != "POST") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r.method.c_str());
    } else if (r.method != "GET") {
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r.method.c_str());
    }
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Exchange::OnHeader);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, this);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Exchange::OnBody);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, this);
  }

  void Finish(CURLcode rc) {
    done_ = true;
    result_ = rc;
    curl_easy_getinfo(conn_->easy, CURLINFO_OS_ERRNO, &os_errno_);
    char* url = nullptr;
    if (curl_easy_getinfo(conn_->easy, CURLINFO_EFFECTIVE_URL, &url) == CURLE_OK && url) {
      response_.url = url;
    }
    if (rc == CURLE_OK) curl_easy_getinfo(conn_->easy, CURLINFO_RESPONSE_CODE, &response_.status);
  }

  static size_t OnHeader(char* data, size_t size, size_t n, void* self) {
    auto* x = static_cast<Exchange*>(self);
    std::string_view line(data, size * n);
    if (line.starts_with("HTTP/")) {  // a new response (after a redirect or 1xx)
      x->response_.headers.clear();
      x->response_.body.clear();
      x->response_.status = 0;
      x->headers_done_ = false;
    } else if (Trim(line).empty()) {
      long code = 0;
      curl_easy_getinfo(x->conn_->easy, CURLINFO_RESPONSE_CODE, &code);
      bool redirect = x->follow_ && code >= 300 && code < 400 && !x->response_.Header("location").empty();
      if (code >= 200 && !redirect) {
        x->response_.status = code;
        x->headers_done_ = true;
      }
    } else if (size_t colon = line.find(':'); colon != std::string_view::npos) {
      x->response_.headers.emplace_back(Lower(Trim(line.substr(0, colon))),
                                        std::string(Trim(line.substr(colon + 1))));
    }
    return size * n;
  }

  static size_t OnRead(char* buf, size_t size, size_t n, void* self) {
    auto* x = static_cast<Exchange*>(self);
    std::optional<size_t> got = x->source_(buf, size * n);
    if (!got) return CURL_READFUNC_ABORT;
    x->sourced_ += static_cast<curl_off_t>(*got);
    return *got;
  }

  static size_t OnBody(char* data, size_t size, size_t n, void* self) {
    auto* x = static_cast<Exchange*>(self);
    size_t len = size * n;
    long status = x->response_.status;
    std::string& body = x->response_.body;
    if (status < 200 || status >= 300) {  // an error page: keep its start
      body.append(data, std::min(len, kMaxErrorBody - std::min(kMaxErrorBody, body.size())));
      return len;
    }
    if (!x->streaming_) {
      if (body.size() + len > x->max_body_) {
        x->too_large_ = true;
        return 0;  // aborts with CURLE_WRITE_ERROR
      }
      body.append(data, len);
      return len;
    }
    if (x->buf_.size() - x->pos_ >= kStreamBuffer) {
      x->paused_ = true;
      return CURL_WRITEFUNC_PAUSE;
    }
    x->buf_.append(data, len);
    return len;
  }

  Client& client_;
  std::unique_ptr<Connection> conn_;
  bool streaming_, follow_;
  size_t max_body_;
  std::chrono::seconds stall_timeout_;
  curl_slist* headers_ = nullptr;
  char errbuf_[CURL_ERROR_SIZE];
  Response response_;
  bool headers_done_ = false, done_ = false, paused_ = false, too_large_ = false;
  CURLcode result_ = CURLE_OK;
  long os_errno_ = 0;
  std::function<std::optional<size_t>(char*, size_t)> source_;  // Request::body_source
  curl_off_t sourced_ = 0;                                        // bytes it gave
  std::string buf_;  // streamed body bytes not yet read
  size_t pos_ = 0;
};

std::string Response::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

std::vector<std::string> Response::Headers(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers) {
    if (k == name) out.push_back(v);
  }
  return out;
}

Stream::Stream(std::unique_ptr<Exchange> exchange) : exchange_(std::move(exchange)) {}
Stream::~Stream() = default;
const Response& Stream::head() const { return exchange_->response(); }
StatusOr<size_t> Stream::Read(void* buf, size_t len) { return exchange_->Read(buf, len); }

Client::Client(ClientOptions options) : options_(std::move(options)) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (!options_.ca_pem.empty()) {
    // CURLOPT_CAINFO_BLOB replaces the default bundle, so it carries both.
    Connection probe;
    char* system = nullptr;
    if (curl_easy_getinfo(probe.easy, CURLINFO_CAINFO, &system) == CURLE_OK && system) {
      if (auto pem = ReadFile(system, 16 << 20); pem.ok()) ca_bundle_ = *pem + "\n";
    }
    ca_bundle_ += options_.ca_pem;
  }
}

Client::~Client() = default;

std::unique_ptr<Connection> Client::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
  }
  return std::make_unique<Connection>();
}

void Client::Release(std::unique_ptr<Connection> c) {
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < kMaxIdle) idle_.push_back(std::move(c));
}

StatusOr<Response> Client::Do(const Request& request) {
  RETURN_IF_ERROR(CheckRequest(request));
  Exchange x(*this, request, /*streaming=*/false);
  x.Pump([] { return false; });
  RETURN_IF_ERROR(x.TransportStatus());
  return std::move(x.response());
}

std::string HostOf(std::string_view url) {
  if (auto p = url.find("://"); p != std::string_view::npos) url.remove_prefix(p + 3);
  url = url.substr(0, url.find_first_of("/?#"));
  if (auto at = url.rfind('@'); at != std::string_view::npos) url.remove_prefix(at + 1);
  return Lower(url);
}

bool IsLoopback(std::string_view host) {
  if (host.starts_with("[")) {
    return host.substr(0, host.find(']') + 1) == "[::1]";
  }
  if (host == "::1") return true;
  host = host.substr(0, host.find(':'));
  if (Lower(host) == "localhost") return true;
  if (!host.starts_with("127.")) return false;
  int dots = 0;
  for (char c : host) {
    if (c == '.') ++dots;
    else if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return dots == 3;
}

std::string Escape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  return out;
}

StatusOr<std::unique_ptr<Stream>> Client::Open(const Request& request) {
  RETURN_IF_ERROR(CheckRequest(request));
  auto x = std::make_unique<Exchange>(*this, request, /*streaming=*/true);
  x->Pump([&] { return x->headers_done(); });
  if (!x->headers_done()) {
    RETURN_IF_ERROR(x->TransportStatus());
    return Internal("no response headers");
  }
  long status = x->response().status;
  if (status < 200 || status >= 300) {
    x->Pump([] { return false; });  // the error body
    RETURN_IF_ERROR(x->TransportStatus());
  }
  return std::make_unique<Stream>(std::move(x));
}

}  // namespace regdisk::registry::http
