#include <gtest/gtest.h>

#include <limits>

#include "harness/json.h"

TEST(Json, DumpsInOrderAndEscapes) {
  harness::Json j = harness::Json::object();
  j.set("b", 1);
  j.set("a", "x\"y\n\x01");
  j.set("n", nullptr);
  j.set("d", 0.5);
  j.set("inf", std::numeric_limits<double>::infinity());
  j.set("u", uint64_t(18446744073709551615ull));
  harness::Json arr = harness::Json::array();
  arr.push(true);
  arr.push(-3);
  j.set("arr", arr);
  j.set("b", 2);  // replaces in place
  EXPECT_EQ(j.dump(),
            "{\"b\":2,\"a\":\"x\\\"y\\n\\u0001\",\"n\":null,\"d\":0.5,\"inf\":null,"
            "\"u\":18446744073709551615,\"arr\":[true,-3]}");
  EXPECT_EQ(j.get("zz"), nullptr);
  ASSERT_NE(j.get("d"), nullptr);
}
