// Kubernetes resource quantities (k8s.io/apimachinery resource.Quantity):
// <sign><digits>[.<digits>]<suffix>, suffix one of the binary Ki..Ei, the
// decimal n u m "" k M G T P E, or an exponent e<int> / E<int>. The value is
// M * 10^e10 * 2^e2 for the integer M of all the digits; it is rounded up to
// a whole number, as Quantity.Value() does.
#include <charconv>
#include <cstdint>
#include <string>
#include <utility>

#include "vm/field.h"
#include "vm/spec.h"

namespace regdisk::vm {
namespace {

struct Suffix {
  std::string_view text;
  int e10, e2;
};
constexpr Suffix kSuffixes[] = {
    {"Ki", 0, 10}, {"Mi", 0, 20}, {"Gi", 0, 30}, {"Ti", 0, 40}, {"Pi", 0, 50}, {"Ei", 0, 60},
    {"n", -9, 0},  {"u", -6, 0},  {"m", -3, 0},  {"", 0, 0},    {"k", 3, 0},   {"M", 6, 0},
    {"G", 9, 0},   {"T", 12, 0},  {"P", 15, 0},  {"E", 18, 0},
};
constexpr int kMaxExponent = 10000;  // far past overflow; clamps e999999999

// Parses "e<int>"/"E<int>" into *e10; false if `s` is not one.
bool ParseExponent(std::string_view s, int* e10) {
  if (s.size() < 2 || (s[0] != 'e' && s[0] != 'E')) return false;
  s.remove_prefix(1);
  int sign = 1;
  if (s[0] == '+' || s[0] == '-') sign = s[0] == '-' ? -1 : 1, s.remove_prefix(1);
  if (s.empty()) return false;
  int exp = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    exp = std::min(exp * 10 + (c - '0'), kMaxExponent);
  }
  *e10 = sign * exp;
  return true;
}

}  // namespace

StatusOr<uint64_t> ParseQuantity(std::string_view q) {
  const std::string quoted = "quantity " + Quoted(q);
  Status bad = InvalidArgument("invalid " + quoted);
  Status range = InvalidArgument(quoted + " is out of range");
  if (q.size() > 64) return bad;
  size_t i = 0;
  bool negative = false;
  if (i < q.size() && (q[i] == '+' || q[i] == '-')) negative = q[i++] == '-';
  std::string digits;
  int frac = 0;
  bool dot = false;
  for (; i < q.size(); ++i) {
    if (q[i] >= '0' && q[i] <= '9') {
      digits += q[i];
      frac += dot;
    } else if (q[i] == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
  }
  if (digits.empty()) return bad;
  std::string_view suffix = q.substr(i);
  int e10 = 0, e2 = 0;
  bool known = false;
  for (const Suffix& s : kSuffixes) {
    if (s.text == suffix) e10 = s.e10, e2 = s.e2, known = true;
  }
  if (!known && !ParseExponent(suffix, &e10)) return bad;
  e10 -= frac;

  digits.erase(0, digits.find_first_not_of('0'));
  if (digits.empty()) return uint64_t{0};
  if (negative) return InvalidArgument(quoted + " must not be negative");
  while (digits.back() == '0') digits.pop_back(), ++e10;
  uint64_t m = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), m);
  if (ec != std::errc()) return range;

  unsigned __int128 n = static_cast<unsigned __int128>(m) << e2;  // < 2^124
  if (e10 >= 0) {
    for (int k = 0; k < e10 && n <= UINT64_MAX; ++k) n *= 10;
  } else {
    if (-e10 >= 38) return uint64_t{1};  // 0 < value < 1, since n < 10^38
    unsigned __int128 d = 1;
    for (int k = 0; k < -e10; ++k) d *= 10;
    n = (n + d - 1) / d;
  }
  if (n > UINT64_MAX) return range;
  return static_cast<uint64_t>(n);
}

}  // namespace regdisk::vm
