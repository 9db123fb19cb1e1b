#include "autoctl/systemd_unit.h"

#include "autoctl/exit_codes.h"
#include "support/postgres_paths.h"

#include "keeper/keeper.h"

#include <fmt/format.h>

#include <pwd.h>
#include <unistd.h>

#include <filesystem>

namespace fs = std::filesystem;

namespace autoctl {

namespace {

// Seconds systemd waits before restarting a dead keeper; short, because the
// monitor counts a silent keeper as down.
constexpr int kRestartSec = 1;
// The keeper checkpoints and stops Postgres on SIGTERM; give it that long.
constexpr int kTimeoutStopSec = 60;

std::string self_path() {
    std::error_code ec;
    fs::path p = fs::read_symlink("/proc/self/exe", ec);
    return ec ? std::string("/usr/local/bin/autoctl") : p.string();
}

}  // namespace

std::string systemd_unit_for(const std::string& pgdata_arg) {
    const std::string pgdata = fs::absolute(pgdata_arg).lexically_normal().string();
    const passwd* pw = ::getpwuid(::geteuid());
    const std::string user = pw != nullptr ? pw->pw_name : "autofailover";

    autofailover::keeper::KeeperStatus status = autofailover::keeper::keeper_status(pgdata);
    if (status.node_id || fs::exists(fs::path(status.state_dir) / "keeper.json")) {
        return fmt::format(
            "# autoctl show systemd --pgdata {0}\n"
            "# Install: save as /etc/systemd/system/autofailover-keeper-{3}.service, then\n"
            "#   systemctl daemon-reload && systemctl enable --now autofailover-keeper-{3}\n"
            "[Unit]\n"
            "Description=autofailover keeper of {0}\n"
            "After=network-online.target\n"
            "Wants=network-online.target\n\n"
            "[Service]\n"
            "Type=simple\n"
            "User={1}\n"
            "ExecStart={2} run --pgdata {0}\n"
            "ExecStop={2} stop --pgdata {0}\n"
            "Restart=always\n"
            "RestartSec={4}\n"
            "TimeoutStopSec={5}\n"
            "# The keeper stops Postgres itself on SIGTERM; systemd must not kill the postmaster first.\n"
            "KillMode=mixed\n\n"
            "[Install]\n"
            "WantedBy=multi-user.target\n",
            pgdata, user, self_path(), status.name.empty() ? "node" : status.name, kRestartSec, kTimeoutStopSec);
    }
    if (fs::exists(fs::path(pgdata) / "autofailover.conf")) {
        return fmt::format(
            "# autoctl show systemd --pgdata {0} (a monitor: the postmaster runs under systemd directly)\n"
            "[Unit]\n"
            "Description=autofailover monitor in {0}\n"
            "After=network-online.target\n"
            "Wants=network-online.target\n\n"
            "[Service]\n"
            "Type=notify\n"
            "User={1}\n"
            "ExecStart={2}/postgres -D {0}\n"
            "ExecReload=/bin/kill -HUP $MAINPID\n"
            "KillMode=mixed\n"
            "KillSignal=SIGINT\n"
            "Restart=always\n"
            "RestartSec={3}\n"
            "TimeoutStopSec={4}\n\n"
            "[Install]\n"
            "WantedBy=multi-user.target\n",
            pgdata, user, autofailover::support::default_pg_bindir(), kRestartSec, kTimeoutStopSec);
    }
    throw CliError(ExitCode::BadArguments,
                   fmt::format("{} is neither a node created by `autoctl create postgres` nor a monitor created by "
                               "`autoctl create monitor`",
                               pgdata));
}

}  // namespace autoctl
