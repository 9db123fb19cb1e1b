// Credentials and TLS of a data node (--auth scram-sha-256, TLS): the replication
// and monitor passwords in pgpass files, the replication role's password, the
// node's certificate (self-signed or the operator's). Passwords are never logged.
#pragma once

#include "keeper/keeper_config.h"

#include <string>

namespace autofailover::keeper {

// The operator's password file (first line, trailing newline dropped); `what`
// names it in errors ("replication password file"). Throws
// KeeperError(BadArguments) when it is missing, empty, or readable by group/others.
std::string read_password_file(const std::string& path, const std::string& what = "replication password file");

// pgpass text for `role` on any host, port and database (pure).
std::string pgpass_text(const std::string& role, const std::string& password);
std::string replication_pgpass_text(const std::string& password);
// Writes that text to path, mode 0600.
void write_pgpass(const std::string& path, const std::string& role, const std::string& password);
void write_replication_pgpass(const std::string& path, const std::string& password);
// The password stored by write_pgpass (throws KeeperError naming `key` when unreadable).
std::string read_pgpass(const std::string& path, const std::string& role, const std::string& key);
std::string read_replication_pgpass(const std::string& path);

// The bootstrap role's password (--monitor-password-file) copied to <state dir>/monitor-bootstrap.pgpass
// (0600) for the one call made with it (register_node, adopt_node); "" when no file was given.
std::string write_bootstrap_pgpass(const std::string& state_dir, const std::string& password_file);

// The node's own monitor role and password (register_node) as a pgpass file, mode 0600.
void write_monitor_pgpass(const std::string& path, const std::string& role, const std::string& password);

// Throws KeeperError(BadArguments) with what to do when keeper.json names
// credentials or certificate files that are missing.
void check_node_credentials(const KeeperConfig& config);

// ALTER ROLE role PASSWORD with a SCRAM verifier computed here (libpq), over
// conninfo: the plain password never reaches the server, its log or a command line.
void set_role_password(const std::string& conninfo, const std::string& role, const std::string& password);

// Sets autofailover_replicator's password from config.replication_passfile, on
// the local Postgres over its socket. The SCRAM verifier is computed here, so the
// plain password never reaches the server (nor its log). No-op without a passfile.
void set_replication_password(const KeeperConfig& config);

// openssl req: a self-signed certificate (CN=common_name) and its key, created
// 0600 before openssl writes it; keeps existing files.
void create_self_signed_certificate(const std::string& cert_file, const std::string& key_file,
                                    const std::string& common_name);

// Copies the operator's CA, certificate and key (--ssl-ca-file, --server-cert,
// --server-key) to the given paths, the key 0600. Refuses a key readable by
// group or others, and files that do not parse as PEM.
void install_ca_signed_certificate(const std::string& ca_source, const std::string& cert_source,
                                   const std::string& key_source, const std::string& ca_file,
                                   const std::string& cert_file, const std::string& key_file);

}  // namespace autofailover::keeper
