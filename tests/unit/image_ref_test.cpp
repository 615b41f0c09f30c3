#include <gtest/gtest.h>

#include "hutch/image_ref.hpp"

using namespace hutch;

TEST(ImageRef, ShortNamesAreLocal) {
  auto r = parse_image_ref("busybox");
  EXPECT_EQ(r.full(), "localhost/busybox:latest");
  EXPECT_EQ(parse_image_ref("busybox:1.36").full(), "localhost/busybox:1.36");
  EXPECT_EQ(parse_image_ref("team/app").full(), "localhost/team/app:latest");
}

TEST(ImageRef, RegistriesAndPorts) {
  auto r = parse_image_ref("registry.example.com:5000/ns/app:v2");
  EXPECT_EQ(r.domain, "registry.example.com:5000");
  EXPECT_EQ(r.path, "ns/app");
  EXPECT_EQ(r.tag, "v2");
  EXPECT_EQ(parse_image_ref("localhost:5000/app").full(), "localhost:5000/app:latest");
  EXPECT_EQ(parse_image_ref("localhost/app").full(), "localhost/app:latest");
}

TEST(ImageRef, Digests) {
  std::string d = "sha256:" + std::string(64, 'a');
  auto r = parse_image_ref("app@" + d);
  EXPECT_EQ(r.digest, d);
  EXPECT_EQ(r.tag, "");
  EXPECT_THROW(parse_image_ref("app@sha256:abc"), Error);
}

TEST(ImageRef, RejectsBadNames) {
  for (const char* bad : {"", "Busybox", "a b", "app:", "app:-x", ":tag", "app//x", "-app", "app_"})
    EXPECT_FALSE(try_parse_image_ref(bad)) << bad;
}
