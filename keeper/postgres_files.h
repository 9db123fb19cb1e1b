// Files in PGDATA the keeper manages: autofailover.conf (included from
// postgresql.conf), a marked block at the top of pg_hba.conf, standby.signal,
// and the keeper's keys in postgresql.auto.conf while Postgres is stopped.
#pragma once

#include "keeper/keeper_config.h"
#include "keeper/keeper_state.h"

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

// Application access from config.allow_clients (docs/clients.md), for the end of the
// keeper's block: first the keeper's own roles are rejected from those networks (they
// get in only from the group's and the monitor's hosts, by the lines above), then
// client_role may reach client_database with auth_method (hostssl with SSL). The
// lines depend on keeper.json only, so they are the same on every node given the
// same options. Empty without allow_clients.
std::vector<std::string> client_hba_lines(const KeeperConfig& config);
// The same merged with the formation's list (autoctl set formation allow-clients, kept in state.json):
// refused values become comments, then one reject line per network of either list, then keeper.json's
// application lines, then the formation's (an identical line once). pg_hba.conf matches address,
// database and role together, so a client gets in when either list admits it.
std::vector<std::string> client_hba_lines(const KeeperConfig& config, const FormationClients& formation);

// The DBA's part of pg_hba.conf text: everything but the keeper's block (pure).
std::string hba_local_part(const std::string& hba_text);
// `current_text`'s keeper block (if any) followed by `local_part` (pure).
std::string with_hba_local_part(const std::string& current_text, const std::string& local_part);

// pg_rewind and pg_basebackup copy pg_hba.conf from the primary, which would replace
// this node's own DBA lines with the primary's. Before either runs, the keeper keeps
// the DBA part of the node's pg_hba.conf in <pgdata>.pg_hba.saved (0600; an existing
// one is kept: it predates an interrupted rewind); afterwards it puts that part back
// under the keeper's block and removes the file. The keeper also restores it at start,
// in case it died in between. A fresh node has nothing saved and keeps the primary's.
std::string saved_hba_path(const std::string& pgdata);
void save_local_hba(const std::string& pgdata);
// Returns true when a saved part was put back.
bool restore_local_hba(const std::string& pgdata);

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
