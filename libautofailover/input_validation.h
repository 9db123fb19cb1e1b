// What the monitor accepts as a node's host and name, and what a keeper accepts
// before it writes a host into pg_hba.conf: one implementation for both sides
// (docs/security.md, "Input validation"). Pure: no I/O.
#pragma once
#include "libautofailover/no_postgres.h"

#include <string>
#include <string_view>

namespace autofailover {

// Why `host` is not an acceptable node host, or "" when it is: an IPv4 or IPv6
// literal (no prefix length, no zone), or a host name of RFC 1123 labels (letters,
// digits, inner hyphens; at most 253 characters) whose last label is not all digits
// and which is none of pg_hba.conf's address keywords (all, samehost, samenet).
// Everything pg_hba.conf could read as a pattern (".example.com", "+role", "@file",
// "10.0.0.0/8") is refused.
std::string host_problem(std::string_view host);

// Why `name` (UTF-8) is not an acceptable node name, or "" when it is: 1 to 63
// characters of valid UTF-8, none of them a control character (C0, DEL, C1), a
// format character (Unicode category Cf: bidi overrides, zero-width characters...)
// or a line/paragraph separator. Such names print as what they are in logs and tables.
std::string node_name_problem(std::string_view name);

// Client access (autoctl create postgres --allow-clients, keeper.json "allow_clients"):
// why `network` is not an acceptable client network, or "" when it is. An IPv4 or
// IPv6 address, alone or with a /prefix length (0..32, 0..128) whose host bits are
// zero (10.1.2.3/8 is refused: 10.0.0.0/8 was probably meant, or 10.1.2.3/32).
// Host names and pg_hba.conf keywords (all, samehost, samenet) are refused: a
// keyword would open the node to every address, a name depends on reverse DNS.
std::string client_network_problem(std::string_view network);
// The pg_hba.conf address field for a network client_network_problem accepts: an
// address without prefix gets /32 (IPv4) or /128 (IPv6).
std::string client_network_cidr(std::string_view network);

// keeper.json "client_database" / "client_role": a comma-separated list that goes
// into a pg_hba.conf line as is. Each item is `all` or a plain name (letters,
// digits, _, $, -; 1 to 63 bytes, not starting with a digit, $ or -); roles may
// also be +group (members of group). Refused: quotes, @file, and what would widen
// access beyond applications: the keywords replication, sameuser, samerole,
// samegroup, and the keeper's own roles (autofailover_*).
std::string client_database_problem(std::string_view databases);
std::string client_role_problem(std::string_view roles);

}  // namespace autofailover
