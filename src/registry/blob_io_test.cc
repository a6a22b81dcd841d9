#include "registry/blob_io.h"

#include <gtest/gtest.h>

namespace regdisk::registry {
namespace {

TEST(ParseContentRange, ReadsAWellFormedRange) {
  auto r = ParseContentRange("bytes 1048576-2097151/4195229");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->first, 1048576u);
  EXPECT_EQ(r->last, 2097151u);
  EXPECT_EQ(r->total, 4195229u);
  EXPECT_TRUE(ParseContentRange("bytes 0-0/1").has_value());
}

TEST(ParseContentRange, RefusesMaliciousOrMalformedValues) {
  for (const char* bad : {"", "bytes", "bytes */100", "bytes 0-9/*", "bytes 5-4/100", "bytes 0-100/100",
                          "bytes -1-5/10", "bytes 0-5/10 ", "bits 0-5/10", "bytes 0-5", "bytes 0/5-10",
                          "bytes 0-99999999999999999999/100000000000000000000", "bytes 0-\r\n5/10",
                          "bytes 0x1-5/10", "bytes 0--5/10"}) {
    EXPECT_FALSE(ParseContentRange(bad).has_value()) << bad;
  }
}

TEST(ParseSize, DigitsOnlyNoOverflow) {
  EXPECT_EQ(ParseSize("1234"), 1234u);
  EXPECT_FALSE(ParseSize("").has_value());
  EXPECT_FALSE(ParseSize("12a").has_value());
  EXPECT_FALSE(ParseSize("-1").has_value());
  EXPECT_FALSE(ParseSize("99999999999999999999").has_value());
}

}  // namespace
}  // namespace regdisk::registry
