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

}  // namespace autofailover
