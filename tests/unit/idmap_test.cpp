#include <gtest/gtest.h>

#include "hutch/userns.hpp"

using namespace hutch;

TEST(SubidFile, FindsRangesByNameAndUid) {
  std::string text =
      "# comment\n"
      "alice:100000:65536\n"
      "bob:165536:65536\n"
      "1000:300000:1000\n"
      "alice:500000:10\n";
  auto r = parse_subid_file(text, "alice", 1000);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0], (IdRange{100000, 65536}));
  EXPECT_EQ(r[1], (IdRange{300000, 1000}));
  EXPECT_EQ(r[2], (IdRange{500000, 10}));
  EXPECT_TRUE(parse_subid_file(text, "carol", 1002).empty());
}

TEST(SubidFile, SkipsMalformedLines) {
  std::string text =
      "alice\n"
      "alice:abc:10\n"
      "alice:10:\n"
      "alice:10:0\n"
      "alice:-5:10\n"
      "alice:10:20x\n"
      "  alice:200000:65536  \r\n";
  auto r = parse_subid_file(text, "alice", 1000);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0], (IdRange{200000, 65536}));
}

TEST(SubidFile, PrefixOfANameIsNotTheName) {
  EXPECT_TRUE(parse_subid_file("alice2:100000:65536\n", "alice", 1000).empty());
  EXPECT_TRUE(parse_subid_file("10000:100000:65536\n", "alice", 1000).empty());
}

TEST(IdMap, CountsEveryLine) {
  EXPECT_EQ(count_id_map("         0       1000          1\n         1     100000      65536\n"), 65537u);
  EXPECT_EQ(count_id_map("0 1000 1\n"), 1u);
  EXPECT_EQ(count_id_map("0 0 4294967295\n"), 4294967295u);
  EXPECT_EQ(count_id_map(""), 0u);
}
