// Files in PGDATA the keeper manages: autofailover.conf (included from
// postgresql.conf), a marked block at the top of pg_hba.conf, standby.signal,
// and the keeper's keys in postgresql.auto.conf while Postgres is stopped.
#pragma once

#include "keeper/keeper_config.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace autofailover::keeper {

// The settings the keeper owns, as the text of autofailover.conf.
std::string autofailover_conf_text(const KeeperConfig& config);
// Writes autofailover.conf and makes postgresql.conf include it (once).
void write_autofailover_conf(const KeeperConfig& config);

// pg_hba.conf lines for the replication role from every group host and for
// the monitor's probe role from the monitor host; nothing else. All use
// auth_method; with ssl they are hostssl lines (plain TCP is refused). A host that
// is not an address or a plain host name gets no line (hosts_refused_by_hba).
std::vector<std::string> hba_lines(const std::vector<std::string>& group_hosts, const std::string& monitor_host,
                                   const std::string& auth_method, bool ssl = false);
// The hosts hba_lines leaves out: neither an IP address nor a plain host name
// (libautofailover/input_validation.h).
std::vector<std::string> hosts_refused_by_hba(const std::vector<std::string>& hosts);
// `text` safe for a log line or a pg_hba.conf comment: at most 64 visible ASCII characters, '?' for the rest.
std::string printable(const std::string& text);
// Replaces the keeper's block at the top of pg_hba.conf. Returns true when the file changed.
bool write_hba_block(const std::string& pgdata, const std::vector<std::string>& lines);

// Replaces pg_hba.conf text's keeper block (pure; used by write_hba_block and tests).
std::string with_hba_block(const std::string& hba_text, const std::vector<std::string>& lines);

// Sets (value) or removes (nullopt) keys in postgresql.auto.conf text (pure).
std::string with_auto_conf_settings(const std::string& auto_conf_text,
                                    const std::map<std::string, std::optional<std::string>>& settings);
// Same on the file; only while Postgres is stopped (running: ALTER SYSTEM).
void edit_auto_conf(const std::string& pgdata, const std::map<std::string, std::optional<std::string>>& settings);

void write_standby_signal(const std::string& pgdata);
void remove_standby_signal(const std::string& pgdata);

// primary_conninfo for streaming from host:port as application_name.
std::string replication_conninfo(const std::string& host, int port, const std::string& application_name);
// The same with this node's credentials and TLS: passfile= (never the password
// itself) and sslmode=require when the node runs with SSL (verify-full with the operator's CA).
std::string replication_conninfo(const KeeperConfig& config, const std::string& host, int port,
                                 const std::string& application_name);
// A plain connection as the replication role to host:port (pg_rewind --source-server, slot check).
std::string source_conninfo(const KeeperConfig& config, const std::string& host, int port);
// PGPASSFILE / PGSSLMODE for tools that take -h -p -U (pg_basebackup).
std::vector<std::string> replication_client_env(const KeeperConfig& config);

}  // namespace autofailover::keeper
