#include "peer/peer_list.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "util/fs.h"

namespace regdisk::peer {
namespace {

std::string Names(const std::vector<PeerAddr>& peers) {
  std::string out;
  for (const PeerAddr& p : peers) out += (out.empty() ? "" : ",") + p.Name();
  return out;
}

// A message fit for a terminal: one line, no escape sequences.
void ExpectOneLine(const Status& st) {
  EXPECT_EQ(st.message().find_first_of("\n\r\x1b"), std::string::npos) << st.message();
}

TEST(PeerSpec, ParsesEveryKindOfItem) {
  auto items = ParsePeerSpec(
      "10.0.0.1:7480, [::1]:80,Node-A.Example:7480,@/etc/regdisk/peers,dns:regdisk-peers.ns:7480,"
      "srv:_peer._tcp.regdisk-peers.ns.svc.cluster.local");
  ASSERT_TRUE(items.ok()) << items.status().message();
  ASSERT_EQ(items->size(), 6u);
  EXPECT_EQ((*items)[0].kind, SpecItem::Kind::kPeer);
  EXPECT_EQ((*items)[0].addr.Name(), "10.0.0.1:7480");
  EXPECT_EQ((*items)[1].addr.Name(), "[::1]:80");
  EXPECT_EQ((*items)[2].addr.Name(), "node-a.example:7480");
  EXPECT_EQ((*items)[3].kind, SpecItem::Kind::kFile);
  EXPECT_EQ((*items)[3].name, "/etc/regdisk/peers");
  EXPECT_EQ((*items)[4].kind, SpecItem::Kind::kDns);
  EXPECT_EQ((*items)[4].addr.host, "regdisk-peers.ns");
  EXPECT_EQ((*items)[4].addr.port, 7480);
  EXPECT_EQ((*items)[5].kind, SpecItem::Kind::kSrv);
  EXPECT_EQ((*items)[5].name, "_peer._tcp.regdisk-peers.ns.svc.cluster.local");
  EXPECT_TRUE(CheckPeerSpec("").ok());
  EXPECT_TRUE(ParsePeerSpec("  ")->empty());
}

TEST(PeerSpec, RefusesMaliciousInput) {
  const char* bad[] = {
      "a",          "a:0",         "a:65536",       "a:+1",          "a: 1",        "a:1x",
      "a:",         ":80",         "[::1]80",       "[zz]:1",        "[::1]:",      "[::1%eth0]:1",
      "@rel/peers", "@",           "@/x\n",         "a\x1b[2J:1",    "a:1,,b:1",    "a:1,",
      "1.2.3:80",   "dns:x",       "dns::80",       "srv:bad name",  "srv:",        "a..b:1",
      "-.b:1",      "\xc3\xa9:1",  "a:99999999999", "http://a:1",    "a/b:1",       "srv:a.b:80",
  };
  for (const char* spec : bad) {
    Status st = CheckPeerSpec(spec);
    EXPECT_FALSE(st.ok()) << Quote(spec);
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << Quote(spec);
    ExpectOneLine(st);
  }
  // A NUL inside an address: C string APIs would read only its start.
  EXPECT_FALSE(CheckPeerSpec(std::string("10.0.0.1\0evil:1", 15)).ok());
  EXPECT_FALSE(CheckPeerSpec(std::string("[::1\0evil]:1", 12)).ok());
  Status st = CheckPeerSpec("a:1,b\x1b]0;pwned\x07:2");
  EXPECT_NE(st.message().find("\\x1b"), std::string::npos) << st.message();  // names the item, escaped
  ExpectOneLine(st);
  std::string label(kMaxLabelBytes + 1, 'a');
  EXPECT_FALSE(CheckPeerSpec(label + ".b:1").ok());
  EXPECT_TRUE(CheckPeerSpec(label.substr(1) + ".b:1").ok());
  std::string overlong = "a:1";
  while (overlong.size() <= kMaxPeerSpec) overlong += ",a:1";
  EXPECT_NE(CheckPeerSpec(overlong).message().find("longer than"), std::string::npos);
  std::string many = "a:1";
  for (size_t i = 0; i < kMaxSpecItems; ++i) many += ",a:1";
  EXPECT_NE(CheckPeerSpec(many).message().find("more than"), std::string::npos);
}

TEST(PeerFile, ParsesLinesAndComments) {
  auto peers = ParsePeerFile("# the cluster\n10.0.0.1:7480\n\n  node-b:7480  # the second\r\n[fe80::1]:7\n");
  ASSERT_TRUE(peers.ok()) << peers.status().message();
  EXPECT_EQ(Names(*peers), "10.0.0.1:7480,node-b:7480,[fe80::1]:7");
  auto bad = ParsePeerFile("a:1\n\nb:70000\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("line 3"), std::string::npos) << bad.status().message();
  std::string too_many;
  for (size_t i = 0; i <= kMaxPeers; ++i) too_many += "a" + std::to_string(i) + ":1\n";
  EXPECT_FALSE(ParsePeerFile(too_many).ok());
  EXPECT_FALSE(ParsePeerFile(std::string(kMaxPeerFileLines + 1, '\n')).ok());
  EXPECT_FALSE(ParsePeerFile(std::string(kMaxPeerFileBytes + 1, '#')).ok());
  ExpectOneLine(ParsePeerFile("a:1\n\x1b[31m:1\n").status());
}

class PeerResolve : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/peer_list_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { (void)RemoveAll(dir_); }
  std::string dir_;
};

TEST_F(PeerResolve, FilesAreReadBoundedAndKeepTheirLastGoodAnswer) {
  std::string file = dir_ + "/peers";
  ASSERT_TRUE(WriteFileAtomic(file, "127.0.0.2:7480\n127.0.0.3:7480\n").ok());
  auto items = ParsePeerSpec("127.0.0.3:7480,@" + file);
  ASSERT_TRUE(items.ok());
  std::vector<std::vector<PeerAddr>> last;
  std::vector<std::string> errors;
  EXPECT_EQ(Names(ResolvePeers(*items, last, errors)), "127.0.0.3:7480,127.0.0.2:7480");  // deduplicated
  EXPECT_TRUE(errors.empty());
  // A huge file: refused with a line naming it; the last answer stays.
  ASSERT_TRUE(WriteFileAtomic(file, std::string(kMaxPeerFileBytes + 1, '#')).ok());
  EXPECT_EQ(Names(ResolvePeers(*items, last, errors)), "127.0.0.3:7480,127.0.0.2:7480");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find(file), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find("larger than"), std::string::npos) << errors[0];
  // Not a regular file (a FIFO would block the reader): refused.
  auto dir_items = ParsePeerSpec("@" + dir_);
  errors.clear();
  std::vector<std::vector<PeerAddr>> fresh;
  EXPECT_TRUE(ResolvePeers(*dir_items, fresh, errors).empty());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("not a regular file"), std::string::npos) << errors[0];
}

TEST_F(PeerResolve, AtMostMaxPeers) {
  std::string a, b;
  for (size_t i = 0; i < kMaxPeers; ++i) {
    a += "10.0." + std::to_string(i) + ".1:1\n";
    b += "10.1." + std::to_string(i) + ".1:1\n";
  }
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/a", a).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/b", b).ok());
  auto items = ParsePeerSpec("@" + dir_ + "/a,@" + dir_ + "/b");
  std::vector<std::vector<PeerAddr>> last;
  std::vector<std::string> errors;
  EXPECT_EQ(ResolvePeers(*items, last, errors).size(), kMaxPeers);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("more than"), std::string::npos);
}

TEST(PeerDns, LocalhostResolvesToLoopback) {
  auto items = ParsePeerSpec("dns:localhost:7481");
  ASSERT_TRUE(items.ok());
  std::vector<std::vector<PeerAddr>> last;
  std::vector<std::string> errors;
  auto peers = ResolvePeers(*items, last, errors);
  EXPECT_TRUE(errors.empty()) << errors[0];
  ASSERT_FALSE(peers.empty());
  for (const PeerAddr& p : peers) {
    EXPECT_TRUE(p.host.starts_with("127.") || p.host == "::1") << p.Name();
    EXPECT_EQ(p.port, 7481);
  }
}

// A DNS answer as a server sends it: a question for `qname`, then the
// records given (already encoded after the owner name).
struct DnsMessage {
  std::string bytes;
  uint16_t answers = 0;
  static void Name(std::string& out, std::string_view name) {
    while (!name.empty()) {
      size_t dot = std::min(name.find('.'), name.size());
      out += static_cast<char>(dot);
      out += name.substr(0, dot);
      name.remove_prefix(std::min(dot + 1, name.size()));
    }
    out += '\0';
  }
  static void U16(std::string& out, uint16_t v) {
    out += static_cast<char>(v >> 8);
    out += static_cast<char>(v & 0xff);
  }
  explicit DnsMessage(std::string_view qname) {
    U16(bytes, 0x1234);
    U16(bytes, 0x8180);
    U16(bytes, 1);
    U16(bytes, 0);  // answers, set by Finish
    U16(bytes, 0);
    U16(bytes, 0);
    Name(bytes, qname);
    U16(bytes, 33);
    U16(bytes, 1);
  }
  // A record named by a pointer to the question's name.
  void Record(uint16_t type, const std::string& rdata) {
    U16(bytes, 0xc00c);
    U16(bytes, type);
    U16(bytes, 1);
    bytes += std::string("\0\0\0\x3c", 4);  // TTL 60
    U16(bytes, static_cast<uint16_t>(rdata.size()));
    bytes += rdata;
    ++answers;
  }
  void Srv(uint16_t port, std::string_view target) {
    std::string rd;
    U16(rd, 10);
    U16(rd, 5);
    U16(rd, port);
    Name(rd, target);
    Record(33, rd);
  }
  std::string Finish() const {
    std::string out = bytes;
    out[6] = static_cast<char>(answers >> 8);
    out[7] = static_cast<char>(answers & 0xff);
    return out;
  }
};

TEST(PeerSrv, ParsesRecordsFromAnAnswer) {
  DnsMessage m("_peer._tcp.regdisk-peers.ns.svc.cluster.local");
  m.Srv(7480, "Node-A.regdisk-peers.ns.svc.cluster.local");
  m.Record(1, std::string("\x0a\x00\x00\x07", 4));  // an A record: skipped
  m.Srv(7481, "node-b");
  m.Srv(7480, "");  // target "." : no service there, skipped
  auto records = ParseSrvAnswer(m.Finish());
  ASSERT_TRUE(records.ok()) << records.status().message();
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[0].target, "node-a.regdisk-peers.ns.svc.cluster.local");
  EXPECT_EQ((*records)[0].port, 7480);
  EXPECT_EQ((*records)[1].target, "node-b");
  EXPECT_EQ((*records)[1].port, 7481);
}

TEST(PeerSrv, RefusesMalformedAnswers) {
  DnsMessage good("x.local");
  good.Srv(7480, "node-a");
  std::string whole = good.Finish();
  for (size_t cut = 0; cut < whole.size(); ++cut) {
    EXPECT_FALSE(ParseSrvAnswer(whole.substr(0, cut)).ok()) << cut;
  }
  DnsMessage short_rd("x.local");
  short_rd.Record(33, std::string("\0\1\0\2\0", 5));
  EXPECT_FALSE(ParseSrvAnswer(short_rd.Finish()).ok());
  DnsMessage port0("x.local");
  port0.Srv(0, "node-a");
  EXPECT_FALSE(ParseSrvAnswer(port0.Finish()).ok());
  DnsMessage bad_name("x.local");
  bad_name.Srv(1, "evil\x1b[2J.example");
  auto st = ParseSrvAnswer(bad_name.Finish()).status();
  EXPECT_FALSE(st.ok());
  ExpectOneLine(st);
  // A compression pointer that loops on itself.
  DnsMessage loop("x.local");
  std::string rd("\0\1\0\1\0\2", 6);
  uint16_t here = static_cast<uint16_t>(loop.bytes.size() + 12 + 6);
  rd += static_cast<char>(0xc0 | (here >> 8));
  rd += static_cast<char>(here & 0xff);
  loop.Record(33, rd);
  EXPECT_FALSE(ParseSrvAnswer(loop.Finish()).ok());
}

}  // namespace
}  // namespace regdisk::peer
