// What every network backend must do, run against each network plugin.
#include <gtest/gtest.h>
#include <unistd.h>

#include "conformance_util.hpp"
#include "hutch/network.hpp"

using namespace hutch;
using namespace hutch::conformance;

namespace {

class NetworkConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { net_ = loader().create<NetworkBackend>(GetParam(), context_in(scratch_.path(), GetParam())); }
  Scratch scratch_;
  std::unique_ptr<NetworkBackend> net_;
};

TEST_P(NetworkConformance, ListsItsOwnNetwork) {
  auto nets = net_->list_networks();
  ASSERT_FALSE(nets.empty());
  bool mine = false;
  for (const auto& n : nets) mine |= n.name == GetParam();
  EXPECT_TRUE(mine);
}

TEST_P(NetworkConformance, PlanMatchesCapabilities) {
  auto caps = net_->capabilities();
  auto plan = net_->plan({"0123456789ab", GetParam()});
  EXPECT_EQ(caps.isolated, plan.new_netns);
  if (!plan.new_netns) EXPECT_FALSE(plan.loopback_up);
  EXPECT_FALSE(caps.description.empty());
}

TEST_P(NetworkConformance, AttachAndDetachAreBalanced) {
  NetworkRequest req{"0123456789ab", GetParam()};
  net_->plan(req);
  EXPECT_NO_THROW(net_->attach(req, getpid()));
  EXPECT_NO_THROW(net_->detach(req));
}

INSTANTIATE_TEST_SUITE_P(Plugins, NetworkConformance, ::testing::Values("none", "host"));

}  // namespace
