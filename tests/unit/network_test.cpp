// The network family's parts: docker's -p syntax, EXPOSE keys, the port words of ps, the
// stored forms, and the bridge's name server (its replies, byte for byte).
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "../../plugins/network/bridge/dns.hpp"
#include "hutch/error.hpp"
#include "hutch/network.hpp"
#include "hutch/store.hpp"

using namespace hutch;

namespace {

PortMapping pm(std::string ip, std::uint16_t host, std::uint16_t ctr, std::string proto = "tcp") {
  PortMapping p;
  p.host_ip = std::move(ip);
  p.host_port = host;
  p.container_port = ctr;
  p.protocol = std::move(proto);
  return p;
}

void expect_usage(const std::string& spec, const std::string& words) {
  try {
    parse_port_spec(spec);
    ADD_FAILURE() << "-p " << spec << " was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::kUsage) << spec;
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
  }
}

TEST(PortSpec, DockersForms) {
  EXPECT_EQ(parse_port_spec("80"), std::vector<PortMapping>{pm("", 0, 80)});
  EXPECT_EQ(parse_port_spec("8080:80"), std::vector<PortMapping>{pm("", 8080, 80)});
  EXPECT_EQ(parse_port_spec("127.0.0.1:8080:80/udp"), std::vector<PortMapping>{pm("127.0.0.1", 8080, 80, "udp")});
  EXPECT_EQ(parse_port_spec("127.0.0.1::80"), std::vector<PortMapping>{pm("127.0.0.1", 0, 80)});
  EXPECT_EQ(parse_port_spec("[::1]:8080:80"), std::vector<PortMapping>{pm("::1", 8080, 80)});
  EXPECT_EQ(parse_port_spec("53/UDP"), std::vector<PortMapping>{pm("", 0, 53, "udp")});
}

TEST(PortSpec, RangesExpandOneMappingAPort) {
  EXPECT_EQ(parse_port_spec("8000-8002:80-82"),
            (std::vector<PortMapping>{pm("", 8000, 80), pm("", 8001, 81), pm("", 8002, 82)}));
  EXPECT_EQ(parse_port_spec("80-81"), (std::vector<PortMapping>{pm("", 0, 80), pm("", 0, 81)}));
  EXPECT_EQ(parse_port_spec("9000-9005:80"), std::vector<PortMapping>{pm("", 9000, 80)});
}

TEST(PortSpec, BadValuesAreUsageErrorsNamingThem) {
  expect_usage("abc", "\"abc\"");
  expect_usage("70000:80", "70000");
  expect_usage("8080:0", "container port 0");
  expect_usage("80/sctp", "sctp");
  expect_usage("8000-8001:80-82", "differ in length");
  expect_usage("82-80", "ends before it starts");
  expect_usage("1.2.3:80:80", "1.2.3");
  expect_usage("a:b:c:d", "[IP:][HOSTPORT:]PORT");
  expect_usage("[::1:80:80", "[ADDR]:HOSTPORT:PORT");
}

TEST(PortSpec, ExposedPortsAndDisplay) {
  EXPECT_EQ(parse_exposed_port("80/tcp"), std::vector<PortMapping>{pm("", 0, 80)});
  EXPECT_EQ(parse_exposed_port("53/udp"), std::vector<PortMapping>{pm("", 0, 53, "udp")});
  EXPECT_EQ(parse_exposed_port("8000-8001"), (std::vector<PortMapping>{pm("", 0, 8000), pm("", 0, 8001)}));
  EXPECT_EQ(port_display(pm("", 8080, 80)), "0.0.0.0:8080->80/tcp");
  EXPECT_EQ(port_display(pm("::1", 8080, 80, "udp")), "[::1]:8080->80/udp");
}

TEST(NetworkRecords, RoundTripThroughJson) {
  ContainerRecord r;
  r.id = "abc";
  r.network = "bridge";
  r.networks = {"appnet", "other"};
  r.network_aliases = {"web"};
  r.network_options = {{"mtu", "1500"}};
  r.ports = {pm("127.0.0.1", 8080, 80), pm("", 0, 53, "udp")};
  nlohmann::json j = r;
  ContainerRecord back = j.get<ContainerRecord>();
  EXPECT_EQ(back.networks, r.networks);
  EXPECT_EQ(back.network_aliases, r.network_aliases);
  EXPECT_EQ(back.network_options, r.network_options);
  EXPECT_EQ(back.ports, r.ports);
  NetworkRequest q = network_request(back);
  EXPECT_EQ(q.aliases.at("other"), std::vector<std::string>{"web"});
  EXPECT_EQ(q.options.at("mtu"), "1500");
  ContainerState s;
  s.ports = {pm("", 41000, 80)};
  NetworkEndpoint ep;
  ep.network = "appnet";
  ep.ipv4 = "10.89.0.2";
  ep.prefix = 24;
  s.endpoints = {ep};
  ContainerState sb = nlohmann::json(s).get<ContainerState>();
  EXPECT_EQ(sb.ports, s.ports);
  ASSERT_EQ(sb.endpoints.size(), 1u);
  EXPECT_EQ(sb.endpoints[0].ipv4, "10.89.0.2");
  EXPECT_EQ(sb.endpoints[0].prefix, 24);
}

// A query as a resolver sends it: id 0x1234, RD, one question.
std::string query(const std::string& name, std::uint16_t type) {
  std::string q("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12);
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    q += static_cast<char>(dot - start);
    q += name.substr(start, dot - start);
    start = dot + 1;
  }
  q += '\0';
  q += static_cast<char>(type >> 8);
  q += static_cast<char>(type & 0xff);
  q += std::string("\x00\x01", 2);
  return q;
}

network::bridge::NameLookup names() {
  return [](const std::string& n, in_addr) -> std::optional<in_addr> {
    if (n != "web") return std::nullopt;
    in_addr a{};
    inet_pton(AF_INET, "10.89.0.2", &a);
    return a;
  };
}

TEST(BridgeDns, AnswersTheNamesItKnows) {
  std::string q = query("Web", 1);
  auto r = network::bridge::dns_reply(q, in_addr{}, names());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), q.size() + 16);
  EXPECT_EQ(r->substr(0, 2), "\x12\x34");
  EXPECT_EQ(static_cast<unsigned char>((*r)[2]) & 0x80, 0x80);  // a response
  EXPECT_EQ(static_cast<unsigned char>((*r)[3]) & 0x0f, 0);     // NOERROR
  EXPECT_EQ((*r)[7], 1);                                         // one answer
  EXPECT_EQ(r->substr(r->size() - 4), std::string("\x0a\x59\x00\x02", 4));
}

TEST(BridgeDns, OtherTypesOfAKnownNameAreEmptyAndUnknownNamesAreNotOurs) {
  auto aaaa = network::bridge::dns_reply(query("web", 28), in_addr{}, names());
  ASSERT_TRUE(aaaa);
  EXPECT_EQ((*aaaa)[7], 0);
  EXPECT_EQ(static_cast<unsigned char>((*aaaa)[3]) & 0x0f, 0);
  EXPECT_FALSE(network::bridge::dns_reply(query("db", 1), in_addr{}, names()));
  std::string nx = network::bridge::dns_error(query("db", 1), false);
  EXPECT_EQ(static_cast<unsigned char>(nx[3]) & 0x0f, 3);  // NXDOMAIN
  EXPECT_EQ(static_cast<unsigned char>(network::bridge::dns_error(query("db", 1), true)[3]) & 0x0f, 2);
}

TEST(BridgeDns, MalformedQueriesGetFormErr) {
  std::string q = query("web", 1);
  q.resize(q.size() - 3);  // the type cut off
  auto r = network::bridge::dns_reply(q, in_addr{}, names());
  ASSERT_TRUE(r);
  EXPECT_EQ(static_cast<unsigned char>((*r)[3]) & 0x0f, 1);
  EXPECT_FALSE(network::bridge::dns_reply("short", in_addr{}, names()));
}

}  // namespace
