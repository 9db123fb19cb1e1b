#include "keeper/replication_auth.h"

#include "support/atomic_file.h"
#include "support/child_process.h"
#include "support/conninfo.h"
#include "keeper/keeper.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <optional>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace autofailover::keeper {
namespace {

const char* const kReplicationRole = "autofailover_replicator";
const char* const kKeeperRole = "autofailover_keeper";

[[noreturn]] void bad(const std::string& message) { throw KeeperError(KeeperError::Kind::BadArguments, message); }

std::string pgpass_escape(const std::string& value) {
    std::string out;
    for (char c : value) {
        if (c == ':' || c == '\\') out += '\\';
        out += c;
    }
    return out;
}

std::string pgpass_unescape(const std::string& value) {
    std::string out;
    for (std::size_t i = 0; i < value.size(); ++i) {
        if (value[i] == '\\' && i + 1 < value.size()) ++i;
        out += value[i];
    }
    return out;
}

// The openssl program on PATH (run_child wants an absolute path).
std::string find_openssl() {
    const char* path = std::getenv("PATH");
    std::istringstream dirs(path ? path : "/usr/bin:/bin");
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        std::string candidate = (dir.empty() ? "." : dir) + "/openssl";
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    bad("--ssl-self-signed needs the openssl command (Debian package openssl)");
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

// An empty file of mode 0600 (replacing any), so that a key written into it is never readable by others.
void create_private_file(const std::string& path) {
    ::unlink(path.c_str());
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) throw KeeperError(KeeperError::Kind::LocalPostgres, "cannot create " + path + ": " + std::strerror(errno));
    ::close(fd);
}

}  // namespace

std::string read_password_file(const std::string& path, const std::string& what) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) bad(what + " " + path + " does not exist or is not readable");
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) bad(what + " " + path + " is readable by group or others: chmod 600 it");
    auto text = support::read_file_if_exists(path);
    if (!text) bad(what + " " + path + " does not exist");
    std::string password = text->substr(0, text->find('\n'));
    if (!password.empty() && password.back() == '\r') password.pop_back();
    if (password.empty()) bad(what + " " + path + " is empty: its first line is the password");
    return password;
}

std::string pgpass_text(const std::string& role, const std::string& password) {
    return "# autofailover: password of " + role + " (written by autoctl create postgres)\n" + "*:*:*:" + role + ":" +
           pgpass_escape(password) + "\n";
}

std::string replication_pgpass_text(const std::string& password) { return pgpass_text(kReplicationRole, password); }

void write_pgpass(const std::string& path, const std::string& role, const std::string& password) {
    support::write_file_atomically(path, pgpass_text(role, password), 0600);
}

std::string write_bootstrap_pgpass(const std::string& state_dir, const std::string& password_file) {
    if (password_file.empty()) return "";
    const std::string path = state_dir + "/monitor-bootstrap.pgpass";
    write_pgpass(path, "autofailover_keeper", read_password_file(password_file, "monitor password file"));
    return path;
}

void write_replication_pgpass(const std::string& path, const std::string& password) {
    write_pgpass(path, kReplicationRole, password);
}

std::string read_pgpass(const std::string& path, const std::string& role, const std::string& key) {
    auto text = support::read_file_if_exists(path);
    if (!text)
        bad("pgpass file " + path + " (keeper.json " + key + ") is missing; re-create it with the password: one line "
            "*:*:*:" + role + ":<password>, mode 0600");
    std::istringstream in(*text);
    std::string line;
    const std::string prefix = "*:*:*:" + role + ":";
    while (std::getline(in, line))
        if (line.rfind(prefix, 0) == 0) return pgpass_unescape(line.substr(prefix.size()));
    bad("pgpass file " + path + " (keeper.json " + key + ") has no line for " + role);
}

std::string read_replication_pgpass(const std::string& path) {
    return read_pgpass(path, kReplicationRole, "replication_passfile");
}

void write_monitor_pgpass(const std::string& path, const std::string& role, const std::string& password) {
    support::write_file_atomically(path,
                          "# autofailover: this node's own monitor role (written by autoctl create postgres)\n*:*:*:" +
                              pgpass_escape(role) + ":" + pgpass_escape(password) + "\n",
                          0600);
}

void check_node_credentials(const KeeperConfig& config) {
    if (!config.replication_passfile.empty()) read_replication_pgpass(config.replication_passfile);
    if (!config.monitor_passfile.empty() && !exists(config.monitor_passfile))
        bad("keeper.json names " + config.monitor_passfile + " for the monitor login of " + config.monitor_user +
            " but it is missing: the node's password cannot be recovered; drop the node (autoctl drop node --force) "
            "and create it again");
    for (const auto& file : {config.ssl_cert_file, config.ssl_key_file, config.ssl_ca_file})
        if (!file.empty() && !exists(file))
            bad("keeper.json names " + file + " for SSL but it is missing; restore it (a self-signed one: "
                "openssl req -new -x509 -nodes, key mode 0600)");
}

void set_role_password(const std::string& conninfo, const std::string& role, const std::string& password) {
    std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(conninfo.c_str()), &PQfinish);
    auto error = [&](const std::string& what) {
        std::string message = conn ? PQerrorMessage(conn.get()) : "out of memory";
        while (!message.empty() && message.back() == '\n') message.pop_back();
        throw KeeperError(KeeperError::Kind::LocalPostgres, what + ": " + message);
    };
    if (!conn || PQstatus(conn.get()) != CONNECTION_OK) error("cannot connect to the local Postgres");
    std::unique_ptr<char, decltype(&PQfreemem)> verifier(
        PQencryptPasswordConn(conn.get(), password.c_str(), role.c_str(), "scram-sha-256"), &PQfreemem);
    if (!verifier) error("cannot compute the SCRAM verifier of the password of " + role);
    std::unique_ptr<char, decltype(&PQfreemem)> name(PQescapeIdentifier(conn.get(), role.c_str(), role.size()),
                                                     &PQfreemem);
    if (!name) error("cannot quote the role name " + role);
    // A SCRAM verifier holds only base64 characters, '$' and ':': it needs no escaping.
    const std::string sql = std::string("ALTER ROLE ") + name.get() + " PASSWORD '" + verifier.get() + "'";
    std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(conn.get(), sql.c_str()), &PQclear);
    if (!result || PQresultStatus(result.get()) != PGRES_COMMAND_OK)
        error("cannot set the password of " + role);
}

void set_replication_password(const KeeperConfig& config) {
    if (config.replication_passfile.empty()) return;
    const long connect_seconds = std::max<long>(1, config.timeouts.postgres_start_timeout.count() / 1000);
    set_role_password("host=" + support::conninfo_quote(config.socket_dir) + " port=" + std::to_string(config.port) +
                          " dbname=postgres application_name=autofailover_keeper connect_timeout=" +
                          std::to_string(connect_seconds),
                      kReplicationRole, read_replication_pgpass(config.replication_passfile));
}

void create_self_signed_certificate(const std::string& cert_file, const std::string& key_file,
                                    const std::string& common_name) {
    if (exists(cert_file) && exists(key_file)) return;
    // A common name is at most 64 characters; "/" would start another RDN.
    std::string cn = common_name.substr(0, 64);
    for (auto& c : cn)
        if (c == '/') c = '_';
    create_private_file(key_file);
    auto r = support::run_child({find_openssl(), "req", "-new", "-x509", "-days", "365", "-nodes", "-subj", "/CN=" + cn,
                        "-keyout", key_file, "-out", cert_file});
    if (!r.ok()) throw KeeperError(KeeperError::Kind::LocalPostgres, "openssl req failed: " + support::tail_of(r.output));
    if (::chmod(key_file.c_str(), 0600) != 0)
        throw KeeperError(KeeperError::Kind::LocalPostgres, "cannot chmod 600 " + key_file);
}

void install_ca_signed_certificate(const std::string& ca_source, const std::string& cert_source,
                                   const std::string& key_source, const std::string& ca_file,
                                   const std::string& cert_file, const std::string& key_file) {
    auto pem = [](const std::string& path, const char* option, const char* marker) {
        std::optional<std::string> text;
        try {
            text = support::read_file_if_exists(path);
        } catch (const std::exception&) {
        }
        if (!text) bad(std::string(option) + " " + path + " does not exist or is not readable");
        if (text->find(marker) == std::string::npos)
            bad(std::string(option) + " " + path + " is not a PEM file (no \"" + marker + "\" line)");
        return *text;
    };
    struct stat st {};
    if (::stat(key_source.c_str(), &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
        bad("--server-key " + key_source + " is readable by group or others: chmod 600 it");
    const std::string ca = pem(ca_source, "--ssl-ca-file", "-----BEGIN CERTIFICATE-----");
    const std::string cert = pem(cert_source, "--server-cert", "-----BEGIN CERTIFICATE-----");
    const std::string key = pem(key_source, "--server-key", "PRIVATE KEY-----");
    support::write_file_atomically(ca_file, ca, 0644);
    support::write_file_atomically(cert_file, cert, 0644);
    support::write_file_atomically(key_file, key, 0600);
}

}  // namespace autofailover::keeper
