// The bridge network's name server: A records for the names of the network's containers,
// everything else relayed upstream (the uplink's forwarder) or refused on an internal network.
#pragma once

#include <netinet/in.h>

#include <functional>
#include <optional>
#include <string>

namespace hutch::network::bridge {

// The address of `name` for the container at `client` (the query's source).
using NameLookup = std::function<std::optional<in_addr>(const std::string& name, in_addr client)>;

// The reply to `query` when it is for a name `lookup` knows (an AAAA or other type of a known
// name gets an empty answer), a malformed query gets FORMERR; nullopt: not ours, relay it.
std::optional<std::string> dns_reply(const std::string& query, in_addr client, const NameLookup& lookup);
// NXDOMAIN (or SERVFAIL with `servfail`) for `query`.
std::string dns_error(const std::string& query, bool servfail);

// Serves on `sock` (UDP, bound to port 53) until the process ends. `upstream` (empty: none)
// gets the queries that are not ours.
void serve_dns(int sock, const NameLookup& lookup, const std::string& upstream);

}  // namespace hutch::network::bridge
