// Where the PostgreSQL 15 programs and the files around a data directory are, for
// keeper and autoctl alike.
#pragma once

#include <string>

namespace autofailover::support {

// The PostgreSQL 15 server binaries this build was configured with (CMake
// AUTOFAILOVER_PG_BINDIR, default /usr/lib/postgresql/15/bin).
std::string default_pg_bindir();

// <bindir>/<program>; the bare name (looked up in PATH) when bindir is empty.
std::string pg_program(const std::string& bindir, const std::string& program);

// pgdata without trailing slashes ("/" stays "/").
std::string trimmed_pgdata(const std::string& pgdata);

// <pgdata>.postgres.log, next to the data directory: where pg_ctl start sends the server log.
std::string server_log_path(const std::string& pgdata);

// <pgdata>.keeper, the default --state-dir of a node.
std::string default_state_dir(const std::string& pgdata);

}  // namespace autofailover::support
