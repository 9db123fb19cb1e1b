#include "support/postgres_paths.h"

namespace autofailover::support {

std::string default_pg_bindir() { return AUTOFAILOVER_PG_BINDIR; }

std::string pg_program(const std::string& bindir, const std::string& program) {
    if (bindir.empty()) return program;
    return bindir.back() == '/' ? bindir + program : bindir + "/" + program;
}

std::string trimmed_pgdata(const std::string& pgdata) {
    std::string p = pgdata;
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    return p;
}

std::string server_log_path(const std::string& pgdata) { return trimmed_pgdata(pgdata) + ".postgres.log"; }

std::string default_state_dir(const std::string& pgdata) { return trimmed_pgdata(pgdata) + ".keeper"; }

}  // namespace autofailover::support
