// The network family's shared parts: the default user-network calls, and docker's port syntax.
#include "hutch/network.hpp"

#include <arpa/inet.h>

#include <charconv>

#include "hutch/error.hpp"

namespace hutch {

namespace {

[[noreturn]] void no_user_networks(const char* what) {
  throw Error(Errc::kUnsupported, std::string("this network backend has no user networks (") + what +
                                      "); user networks are the bridge backend's: \"hutch network create NAME\"");
}

// "8080" or "8000-8002" into [first, last]; `what` names the part for the error.
std::pair<unsigned, unsigned> parse_range(const std::string& s, const std::string& spec, const char* what) {
  auto one = [&](std::string_view v) {
    unsigned n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || p != v.data() + v.size() || v.empty() || n > 65535)
      throw Error(Errc::kUsage, "invalid " + std::string(what) + " \"" + std::string(v) + "\" in -p " + spec +
                                    "; a port is a number from 1 to 65535 (or a range such as 8000-8010)");
    return n;
  };
  auto dash = s.find('-');
  unsigned a = one(std::string_view(s).substr(0, dash));
  unsigned b = dash == std::string::npos ? a : one(std::string_view(s).substr(dash + 1));
  if (b < a) throw Error(Errc::kUsage, "invalid port range \"" + s + "\" in -p " + spec + ": it ends before it starts");
  return {a, b};
}

std::string valid_protocol(std::string proto, const std::string& spec) {
  if (proto.empty()) return "tcp";
  for (auto& c : proto) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (proto != "tcp" && proto != "udp")
    throw Error(Errc::kUsage, "invalid protocol \"" + proto + "\" in -p " + spec + "; it is tcp or udp");
  return proto;
}

}  // namespace

NetworkInfo NetworkBackend::create_network(const NetworkCreateRequest&) { no_user_networks("create"); }
void NetworkBackend::remove_network(const std::string&) { no_user_networks("remove"); }
NetworkEndpoint NetworkBackend::connect(const NetworkRequest&, const std::string&, pid_t) { no_user_networks("connect"); }
void NetworkBackend::disconnect(const NetworkRequest&, const std::string&) { no_user_networks("disconnect"); }

std::vector<PortMapping> parse_port_spec(const std::string& spec) {
  std::string rest = spec;
  std::string proto;
  if (auto slash = rest.rfind('/'); slash != std::string::npos) {
    proto = rest.substr(slash + 1);
    rest.resize(slash);
  }
  proto = valid_protocol(proto, spec);
  // An IPv6 host address is bracketed: [::1]:8080:80.
  std::string ip;
  if (!rest.empty() && rest[0] == '[') {
    auto close = rest.find(']');
    if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':')
      throw Error(Errc::kUsage, "invalid -p " + spec + ": an IPv6 address is written [ADDR]:HOSTPORT:PORT");
    ip = rest.substr(1, close - 1);
    rest = rest.substr(close + 2);
  }
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    auto colon = rest.find(':', start);
    parts.push_back(rest.substr(start, colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  std::string host_part, ctr_part;
  if (parts.size() == 1) {
    ctr_part = parts[0];
  } else if (parts.size() == 2) {
    host_part = parts[0], ctr_part = parts[1];
  } else if (parts.size() == 3 && ip.empty()) {
    ip = parts[0], host_part = parts[1], ctr_part = parts[2];
  } else {
    throw Error(Errc::kUsage, "invalid -p " + spec + "; the form is [IP:][HOSTPORT:]PORT[/tcp|udp]");
  }
  if (!ip.empty()) {
    unsigned char buf[16];
    if (inet_pton(AF_INET, ip.c_str(), buf) != 1 && inet_pton(AF_INET6, ip.c_str(), buf) != 1)
      throw Error(Errc::kUsage, "invalid host address \"" + ip + "\" in -p " + spec + "; give an IPv4 or [IPv6] address");
  }
  auto [c0, c1] = parse_range(ctr_part, spec, "container port");
  if (c0 == 0) throw Error(Errc::kUsage, "invalid container port 0 in -p " + spec);
  unsigned h0 = 0, h1 = 0;
  if (!host_part.empty()) {
    std::tie(h0, h1) = parse_range(host_part, spec, "host port");
    // A range on both sides must be the same length; a host range for one container port
    // publishes it on the range's first port.
    if (h1 - h0 != c1 - c0 && c0 != c1)
      throw Error(Errc::kUsage, "invalid -p " + spec + ": the host range and the container range differ in length");
  }
  std::vector<PortMapping> out;
  for (unsigned c = c0; c <= c1; ++c) {
    PortMapping m;
    m.host_ip = ip;
    m.container_port = static_cast<std::uint16_t>(c);
    m.host_port = static_cast<std::uint16_t>(host_part.empty() ? 0 : (c0 == c1 ? h0 : h0 + (c - c0)));
    m.protocol = proto;
    out.push_back(m);
  }
  return out;
}

std::vector<PortMapping> parse_exposed_port(const std::string& key) {
  std::string port = key, proto;
  if (auto slash = key.find('/'); slash != std::string::npos) port = key.substr(0, slash), proto = key.substr(slash + 1);
  std::vector<PortMapping> out;
  auto [a, b] = parse_range(port, key, "exposed port");
  for (unsigned p = a; p <= b; ++p) {
    PortMapping m;
    m.container_port = static_cast<std::uint16_t>(p);
    m.protocol = valid_protocol(proto, key);
    out.push_back(m);
  }
  return out;
}

std::string port_display(const PortMapping& p) {
  std::string ip = p.host_ip.empty() ? "0.0.0.0" : (p.host_ip.find(':') != std::string::npos ? "[" + p.host_ip + "]" : p.host_ip);
  return ip + ":" + std::to_string(p.host_port) + "->" + std::to_string(p.container_port) + "/" + p.protocol;
}

}  // namespace hutch
