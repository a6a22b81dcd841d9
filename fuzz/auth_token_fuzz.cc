// Fuzzes what a registry's auth flow takes from the network: a
// WWW-Authenticate header (registry/challenge.h) and the token server's
// answer (ParseTokenAnswer, registry/auth.h). Input: the header, a NUL byte,
// the answer's body. Whatever the bytes, nothing crashes, and a token that
// is accepted is token68 of bounded size, so the Authorization line built
// from it can hold no CR, LF or other control character.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "registry/auth.h"
#include "registry/challenge.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t nul = input.find('\0');
  std::string_view header = input.substr(0, nul);
  std::string_view body = nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);
  std::string realm;
  for (const auto& c : regdisk::registry::ParseChallenges(header)) {
    if (c.scheme == "bearer") realm = c.Param("realm");
  }
  auto answer = regdisk::registry::ParseTokenAnswer(body, realm);
  if (!answer.ok()) {
    if (answer.status().message().find('\n') != std::string::npos) std::abort();
    return 0;
  }
  if (answer->token.empty() || answer->token.size() > (16 << 10)) std::abort();
  for (char ch : "Authorization: Bearer " + answer->token) {
    auto u = static_cast<unsigned char>(ch);
    if (u <= 0x20 && ch != ' ') std::abort();
    if (u >= 0x7f) std::abort();
  }
  if (answer->token.find(' ') != std::string::npos) std::abort();
  if (answer->expires_in < 60 || answer->expires_in > 24 * 3600) std::abort();
  return 0;
}
