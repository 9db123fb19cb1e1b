#include "keeper/write_lease.h"

#include "keeper/keeper_log.h"

#include <time.h>
#include <unistd.h>

namespace autofailover::keeper {
namespace {

// The extension's lease_clock(): CLOCK_BOOTTIME runs on while processes are
// stopped, and is the same for every process of the host.
long long boottime_ns() {
    timespec ts{};
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

void call_renew(LocalPostgres& pg, std::optional<long long> deadline_ns) {
    const int pid = static_cast<int>(getpid());
    if (deadline_ns)
        pg.sql_params("SELECT autofailover_node.renew_lease($1, $2)", *deadline_ns, pid);
    else
        pg.sql_params("SELECT autofailover_node.renew_lease(NULL, $1)", pid);
}

}  // namespace

void WriteLease::renew(LocalPostgres& pg, std::optional<std::chrono::milliseconds> left, const std::string& node) {
    // The deadline is taken on the clock before the call: a keeper stopped between
    // here and the call hands over a deadline that is already past.
    std::optional<long long> deadline_ns;
    if (left) deadline_ns = boottime_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(*left).count();
    try {
        try {
            call_renew(pg, deadline_ns);
        } catch (const pqxx::undefined_function&) {
            pg.sql("CREATE EXTENSION IF NOT EXISTS autofailover_node");
            log_info("node={} created extension autofailover_node (the write lease)", node);
            call_renew(pg, deadline_ns);
        } catch (const pqxx::sql_error& e) {
            // 3F000: no schema autofailover_node yet.
            if (e.sqlstate() != "3F000") throw;
            pg.sql("CREATE EXTENSION IF NOT EXISTS autofailover_node");
            log_info("node={} created extension autofailover_node (the write lease)", node);
            call_renew(pg, deadline_ns);
        }
        if (!last_error_.empty()) log_info("node={} write lease renewed again", node);
        last_error_.clear();
    } catch (const std::exception& e) {
        std::string message = e.what();
        if (message != last_error_)
            log_warn("node={} write lease not renewed (the keeper's own fencing still applies): {}", node, message);
        last_error_ = message;
    }
}

}  // namespace autofailover::keeper
