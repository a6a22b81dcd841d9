// Fuzzes the parsers of the --peers spec, of a peer file and of a DNS SRV
// answer (peer/peer_list.h): the first byte picks one, the rest is its
// input. Any bytes must parse without crashing, and what parses must name
// peers that parse again to themselves (so nothing odd reaches a URL or a
// log line).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "peer/peer_list.h"

namespace {

void CheckAddr(const regdisk::peer::PeerAddr& a) {
  auto again = regdisk::peer::ParsePeerAddr(a.Name());
  if (!again.ok() || !(*again == a)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  using regdisk::peer::SpecItem;
  switch (data[0] % 3) {
    case 0:
      if (auto items = regdisk::peer::ParsePeerSpec(in); items.ok()) {
        for (const SpecItem& i : *items) {
          if (i.kind == SpecItem::Kind::kPeer || i.kind == SpecItem::Kind::kDns) CheckAddr(i.addr);
          if (i.kind == SpecItem::Kind::kFile && i.name.front() != '/') std::abort();
        }
      }
      break;
    case 1:
      if (auto peers = regdisk::peer::ParsePeerFile(in); peers.ok()) {
        if (peers->size() > regdisk::peer::kMaxPeers) std::abort();
        for (const auto& p : *peers) CheckAddr(p);
      }
      break;
    case 2:
      if (auto records = regdisk::peer::ParseSrvAnswer(in); records.ok()) {
        if (records->size() > regdisk::peer::kMaxDnsAnswers) std::abort();
        for (const auto& r : *records) CheckAddr({r.target, r.port});
      }
      break;
  }
  return 0;
}
