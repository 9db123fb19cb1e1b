// Building and redacting libpq connection strings.
#pragma once

#include <string>
#include <vector>

namespace autofailover::support {

// Quotes a value for a key=value conninfo ('...' with \ and ' escaped).
std::string conninfo_quote(const std::string& value);

// The connection string with any password replaced by "****" (URI and key=value forms), for logs.
std::string redact_conninfo(const std::string& conninfo);

// The connection string without any password (URI userinfo, URI query or key=value).
std::string conninfo_without_password(const std::string& conninfo);

// Host part of a postgres:// URI or key=value string ("" when absent).
std::string conninfo_host(const std::string& conninfo);

// Every host of a multi-host URI (postgres://a:1,b:2/db) or key=value string
// (host=a,b): replicated monitors (docs/monitor-ha.md) all probe the nodes.
std::vector<std::string> conninfo_hosts(const std::string& conninfo);

}  // namespace autofailover::support
