#include "dns.hpp"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstring>

namespace hutch::network::bridge {

namespace {

constexpr std::uint16_t kTypeA = 1;

// The question's name (lowercase, no final dot), and where its type field starts.
std::optional<std::pair<std::string, size_t>> question(const std::string& q) {
  if (q.size() < 12) return std::nullopt;
  if (((static_cast<unsigned char>(q[4]) << 8) | static_cast<unsigned char>(q[5])) != 1) return std::nullopt;
  size_t i = 12;
  std::string name;
  while (i < q.size()) {
    unsigned len = static_cast<unsigned char>(q[i]);
    if (len == 0) {
      ++i;
      if (i + 4 > q.size()) return std::nullopt;
      return std::make_pair(name, i);
    }
    if (len > 63 || i + 1 + len > q.size()) return std::nullopt;
    if (!name.empty()) name += '.';
    for (size_t k = 0; k < len; ++k) name += static_cast<char>(std::tolower(static_cast<unsigned char>(q[i + 1 + k])));
    i += 1 + len;
  }
  return std::nullopt;
}

std::string header_reply(const std::string& q, size_t question_end, int rcode, int answers) {
  std::string r = q.substr(0, question_end);
  r[2] = static_cast<char>(0x80 | (q[2] & 0x79) | 0x04);  // QR, the query's opcode and RD, AA
  r[3] = static_cast<char>(0x80 | rcode);                 // RA
  r[6] = 0, r[7] = static_cast<char>(answers);
  r[8] = r[9] = r[10] = r[11] = 0;  // no authority, no additional (EDNS dropped)
  return r;
}

}  // namespace

std::optional<std::string> dns_reply(const std::string& q, in_addr client, const NameLookup& lookup) {
  auto qn = question(q);
  if (!qn) {
    if (q.size() < 12) return std::nullopt;
    std::string r = q.substr(0, 12);
    r[2] = static_cast<char>(0x80 | (q[2] & 0x79));
    r[3] = static_cast<char>(0x80 | 1);  // FORMERR
    for (int k = 4; k < 12; ++k) r[static_cast<size_t>(k)] = 0;
    return r;
  }
  auto [name, type_at] = *qn;
  auto addr = lookup(name, client);
  if (!addr) return std::nullopt;
  std::uint16_t type = static_cast<std::uint16_t>((static_cast<unsigned char>(q[type_at]) << 8) | static_cast<unsigned char>(q[type_at + 1]));
  size_t end = type_at + 4;
  if (type != kTypeA) return header_reply(q, end, 0, 0);
  std::string r = header_reply(q, end, 0, 1);
  const unsigned char rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4};  // the question's name, A, IN, TTL 5 s
  r.append(reinterpret_cast<const char*>(rr), sizeof rr);
  r.append(reinterpret_cast<const char*>(&addr->s_addr), 4);
  return r;
}

std::string dns_error(const std::string& q, bool servfail) {
  auto qn = question(q);
  return header_reply(q, qn ? qn->second + 4 : 12, servfail ? 2 : 3, 0);
}

void serve_dns(int sock, const NameLookup& lookup, const std::string& upstream) {
  char buf[4096];
  for (;;) {
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    ssize_t n = ::recvfrom(sock, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    std::string q(buf, static_cast<size_t>(n));
    if (q.size() < 12) continue;
    in_addr client{};
    if (from.ss_family == AF_INET) client = reinterpret_cast<sockaddr_in*>(&from)->sin_addr;
    std::optional<std::string> reply = dns_reply(q, client, lookup);
    // A single-label name that is not a container's stays here: it is not the world's.
    auto qn = question(q);
    bool local = qn && qn->first.find('.') == std::string::npos;
    if (!reply && !upstream.empty() && !local) {
      // Relayed one at a time: the containers of one network ask little, and the forwarder
      // (libslirp's, to the host's resolvers) answers or fails fast.
      int up = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(53);
      inet_pton(AF_INET, upstream.c_str(), &sa.sin_addr);
      if (up >= 0 && ::connect(up, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 && ::send(up, q.data(), q.size(), 0) >= 0) {
        pollfd p{up, POLLIN, 0};
        if (::poll(&p, 1, 3000) == 1) {
          ssize_t got = ::recv(up, buf, sizeof buf, 0);
          if (got > 0) reply = std::string(buf, static_cast<size_t>(got));
        }
      }
      if (up >= 0) ::close(up);
      if (!reply) reply = dns_error(q, true);
    }
    if (!reply) reply = dns_error(q, false);
    (void)::sendto(sock, reply->data(), reply->size(), 0, reinterpret_cast<sockaddr*>(&from), len);
  }
}

}  // namespace hutch::network::bridge
