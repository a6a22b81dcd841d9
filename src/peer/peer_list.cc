#include "peer/peer_list.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <set>

#include "util/fs.h"

namespace regdisk::peer {
namespace {

// Items and lines are shown this long at most in a message.
constexpr size_t kMaxShown = 80;
// Resolver retries for srv: queries (resolv.conf's default is 5 s x 2
// attempts per server): a refresh should not hold a Fetch for long.
constexpr int kSrvRetransSeconds = 2;
constexpr int kSrvRetries = 1;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// A DNS name: labels of letters, digits, '-' and '_' (SRV names start with
// one), 1-63 bytes each, not starting or ending with '-', 253 in all, no
// trailing dot; the last label not all digits (so "1.2.3" is no name, and
// no IPv4 literal either).
bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > kMaxHostBytes) return false;
  size_t start = 0;
  bool all_digits = true;
  for (size_t i = 0; i <= name.size(); ++i) {
    if (i == name.size() || name[i] == '.') {
      if (i == start || i - start > kMaxLabelBytes || name[start] == '-' || name[i - 1] == '-') return false;
      start = i + 1;
      if (i < name.size()) all_digits = true;
      continue;
    }
    unsigned char c = static_cast<unsigned char>(name[i]);
    if (!std::isalnum(c) && c != '-' && c != '_') return false;
    all_digits = all_digits && std::isdigit(c);
  }
  return !all_digits;
}

// True when every byte of `s` is one of `chars` (before a C string API
// reads `s`: a NUL inside would end it early).
bool OnlyOf(std::string_view s, std::string_view chars) {
  return s.find_first_not_of(chars) == std::string_view::npos;
}

StatusOr<uint16_t> ParsePort(std::string_view s) {
  if (s.empty() || s.size() > 5 ||
      !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return InvalidArgument("port " + Quote(s, kMaxShown) + " is not a number from 1 to 65535");
  }
  unsigned long v = std::stoul(std::string(s));
  if (v == 0 || v > 65535) return InvalidArgument("port " + Quote(s, kMaxShown) + " is not from 1 to 65535");
  return static_cast<uint16_t>(v);
}

Status ParseItem(std::string_view text, SpecItem& item) {
  item.text = std::string(text);
  if (text.starts_with("@")) {
    item.kind = SpecItem::Kind::kFile;
    item.name = std::string(text.substr(1));
    if (!item.name.starts_with("/")) return InvalidArgument("a peer file must be an absolute path");
    for (char c : item.name) {
      unsigned char u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f) return InvalidArgument("control character in the peer file's path");
    }
    return OkStatus();
  }
  if (text.starts_with("dns:")) {
    item.kind = SpecItem::Kind::kDns;
    ASSIGN_OR_RETURN(item.addr, ParsePeerAddr(text.substr(4)));
    return OkStatus();
  }
  if (text.starts_with("srv:")) {
    item.kind = SpecItem::Kind::kSrv;
    item.name = Lower(text.substr(4));
    if (!ValidName(item.name)) return InvalidArgument("not a DNS name");
    return OkStatus();
  }
  item.kind = SpecItem::Kind::kPeer;
  ASSIGN_OR_RETURN(item.addr, ParsePeerAddr(text));
  return OkStatus();
}

// getaddrinfo's addresses of `host`, numeric, at `port`; scoped (link-local
// "%if") addresses skipped.
Status ResolveHost(const std::string& host, uint16_t port, std::vector<PeerAddr>& out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res); rc != 0) {
    return Unavailable(std::string("resolving ") + Quote(host, kMaxShown) + ": " + gai_strerror(rc));
  }
  size_t taken = 0;
  for (addrinfo* a = res; a && taken < kMaxDnsAnswers; a = a->ai_next, ++taken) {
    char buf[NI_MAXHOST];
    if (getnameinfo(a->ai_addr, a->ai_addrlen, buf, sizeof buf, nullptr, 0, NI_NUMERICHOST) != 0) continue;
    std::string_view h(buf);
    if (h.find('%') != std::string_view::npos) continue;
    out.push_back(PeerAddr{Lower(h), port});
  }
  freeaddrinfo(res);
  return OkStatus();
}

Status ResolveSrv(const std::string& name, std::vector<PeerAddr>& out) {
  struct __res_state state {};
  if (res_ninit(&state) != 0) return Unavailable("cannot read the resolver configuration");
  state.retrans = kSrvRetransSeconds;
  state.retry = kSrvRetries;
  std::string answer(kMaxDnsMessage, '\0');
  int n = res_nquery(&state, name.c_str(), ns_c_in, ns_t_srv, reinterpret_cast<unsigned char*>(answer.data()),
                     static_cast<int>(answer.size()));
  res_nclose(&state);
  if (n < 0) return Unavailable("no SRV records for " + Quote(name, kMaxShown));
  answer.resize(std::min<size_t>(static_cast<size_t>(n), answer.size()));
  ASSIGN_OR_RETURN(auto records, ParseSrvAnswer(answer));
  for (const SrvRecord& r : records) {
    if (out.size() >= kMaxDnsAnswers) break;
    RETURN_IF_ERROR(ResolveHost(r.target, r.port, out));
  }
  return OkStatus();
}

StatusOr<std::vector<PeerAddr>> ReadPeerFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return IoError("reading it", errno);
  if (!S_ISREG(st.st_mode)) return InvalidArgument("not a regular file");
  if (static_cast<uint64_t>(st.st_size) > kMaxPeerFileBytes) {
    return InvalidArgument("larger than the limit of " + std::to_string(kMaxPeerFileBytes) + " bytes");
  }
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxPeerFileBytes));
  return ParsePeerFile(text);
}

}  // namespace

std::string PeerAddr::Name() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

StatusOr<PeerAddr> ParsePeerAddr(std::string_view s) {
  PeerAddr addr;
  std::string_view host, port;
  if (s.starts_with("[")) {
    size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return InvalidArgument("expected [IPv6]:PORT");
    }
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
    in6_addr a6{};
    std::string h(host);
    if (!OnlyOf(host, "0123456789abcdefABCDEF:.") || h.size() > INET6_ADDRSTRLEN ||
        inet_pton(AF_INET6, h.c_str(), &a6) != 1) {
      return InvalidArgument(Quote(host, kMaxShown) + " is not an IPv6 address");
    }
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) return InvalidArgument("expected HOST:PORT");
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    in_addr a4{};
    std::string h(host);
    if (!OnlyOf(host, "0123456789.") || h.size() > INET_ADDRSTRLEN || inet_pton(AF_INET, h.c_str(), &a4) != 1) {
      if (!ValidName(host)) return InvalidArgument(Quote(host, kMaxShown) + " is not an IPv4 address or a DNS name");
    }
  }
  ASSIGN_OR_RETURN(addr.port, ParsePort(port));
  addr.host = Lower(host);
  return addr;
}

StatusOr<std::vector<SpecItem>> ParsePeerSpec(std::string_view spec) {
  if (spec.size() > kMaxPeerSpec) {
    return InvalidArgument("longer than " + std::to_string(kMaxPeerSpec) + " bytes (use an @file)");
  }
  std::vector<SpecItem> items;
  if (TrimSpace(spec).empty()) return items;
  size_t start = 0;
  while (start <= spec.size()) {
    size_t comma = std::min(spec.find(',', start), spec.size());
    std::string_view text = TrimSpace(spec.substr(start, comma - start));
    start = comma + 1;
    if (items.size() == kMaxSpecItems) {
      return InvalidArgument("more than " + std::to_string(kMaxSpecItems) + " items (use an @file)");
    }
    if (text.empty()) return InvalidArgument("an empty item (two commas in a row?)");
    SpecItem item;
    if (Status st = ParseItem(text, item); !st.ok()) {
      return InvalidArgument("item " + Quote(text, kMaxShown) + ": " + st.message());
    }
    items.push_back(std::move(item));
  }
  return items;
}

Status CheckPeerSpec(std::string_view spec) { return ParsePeerSpec(spec).status(); }

StatusOr<std::vector<PeerAddr>> ParsePeerFile(std::string_view text) {
  if (text.size() > kMaxPeerFileBytes) {
    return InvalidArgument("larger than the limit of " + std::to_string(kMaxPeerFileBytes) + " bytes");
  }
  std::vector<PeerAddr> peers;
  size_t lines = 0, start = 0;
  while (start < text.size()) {
    size_t nl = std::min(text.find('\n', start), text.size());
    std::string_view line = text.substr(start, nl - start);
    start = nl + 1;
    if (++lines > kMaxPeerFileLines) {
      return InvalidArgument("more than " + std::to_string(kMaxPeerFileLines) + " lines");
    }
    line = TrimSpace(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    if (peers.size() == kMaxPeers) return InvalidArgument("more than " + std::to_string(kMaxPeers) + " peers");
    auto addr = ParsePeerAddr(line);
    if (!addr.ok()) {
      return InvalidArgument("line " + std::to_string(lines) + " " + Quote(line, kMaxShown) + ": " +
                             addr.status().message());
    }
    peers.push_back(std::move(*addr));
  }
  return peers;
}

StatusOr<std::vector<SrvRecord>> ParseSrvAnswer(std::string_view message) {
  if (message.size() > kMaxDnsMessage) return InvalidArgument("DNS answer too large");
  const auto* msg = reinterpret_cast<const unsigned char*>(message.data());
  ns_msg handle{};
  if (ns_initparse(msg, static_cast<int>(message.size()), &handle) != 0) {
    return InvalidArgument("malformed DNS answer");
  }
  std::vector<SrvRecord> out;
  int count = ns_msg_count(handle, ns_s_an);
  for (int i = 0; i < count && out.size() < kMaxDnsAnswers; ++i) {
    ns_rr rr{};
    if (ns_parserr(&handle, ns_s_an, i, &rr) != 0) return InvalidArgument("malformed DNS answer record");
    if (ns_rr_type(rr) != ns_t_srv || ns_rr_class(rr) != ns_c_in) continue;
    // priority(2) weight(2) port(2) target(name)
    if (ns_rr_rdlen(rr) < 7) return InvalidArgument("SRV record too short");
    const unsigned char* rd = ns_rr_rdata(rr);
    SrvRecord r;
    r.port = static_cast<uint16_t>((rd[4] << 8) | rd[5]);
    char target[NS_MAXDNAME];
    if (ns_name_uncompress(msg, msg + message.size(), rd + 6, target, sizeof target) < 0) {
      return InvalidArgument("SRV record with a malformed target");
    }
    std::string name = Lower(target);
    if (name == "." || name.empty()) continue;  // "no such service here"
    if (name.back() == '.') name.pop_back();
    if (!ValidName(name)) return InvalidArgument("SRV target " + Quote(name, kMaxShown) + " is not a host name");
    if (r.port == 0) return InvalidArgument("SRV record for " + Quote(name, kMaxShown) + " with port 0");
    r.target = std::move(name);
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<PeerAddr> ResolvePeers(const std::vector<SpecItem>& items,
                                   std::vector<std::vector<PeerAddr>>& last,
                                   std::vector<std::string>& errors) {
  last.resize(items.size());
  std::vector<PeerAddr> peers;
  std::set<PeerAddr> seen;
  bool capped = false;
  for (size_t i = 0; i < items.size(); ++i) {
    const SpecItem& item = items[i];
    std::vector<PeerAddr> got;
    Status st;
    switch (item.kind) {
      case SpecItem::Kind::kPeer:
        got.push_back(item.addr);
        break;
      case SpecItem::Kind::kFile: {
        auto read = ReadPeerFile(item.name);
        if (read.ok()) got = std::move(*read);
        st = read.status();
        break;
      }
      case SpecItem::Kind::kDns:
        st = ResolveHost(item.addr.host, item.addr.port, got);
        break;
      case SpecItem::Kind::kSrv:
        st = ResolveSrv(item.name, got);
        break;
    }
    if (st.ok()) {
      last[i] = std::move(got);
    } else {
      errors.push_back("peers " + Quote(item.text, kMaxShown) + ": " + st.message() +
                       (last[i].empty() ? "" : " (keeping the last answer)"));
    }
    for (const PeerAddr& p : last[i]) {
      if (!seen.insert(p).second) continue;
      if (peers.size() == kMaxPeers) {
        capped = true;
        break;
      }
      peers.push_back(p);
    }
  }
  if (capped) errors.push_back("peers: more than " + std::to_string(kMaxPeers) + " peers; the rest ignored");
  return peers;
}

}  // namespace regdisk::peer
