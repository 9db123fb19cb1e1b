// autoctl run-monitor | show monitors: replicated monitors (docs/monitor-ha.md).
#include "autoctl/command_tree.h"
#include "autoctl/etcd_client.h"
#include "autoctl/exit_codes.h"
#include "autoctl/monitor_agent.h"

#include <fmt/format.h>

#include <memory>

namespace autoctl {

namespace {

struct ShowMonitorsOptions {
    std::string pgdata;
    std::string etcd;
    std::string cluster = "main";
    int request_timeout_ms = 1000;
    bool json = false;
};

}  // namespace

void add_monitor_ha_commands(CLI::App& app) {
    auto pgdata = std::make_shared<std::string>();
    CLI::App* run = app.add_subcommand(
        "run-monitor", "Run the agent of a replicated monitor (create monitor --etcd) in the foreground");
    run->add_option("--pgdata", *pgdata, "Data directory of the monitor")->required()->envname("PGDATA");
    run->callback([pgdata] {
        const int status = run_monitor_agent(*pgdata);
        if (status != 0) throw ExitWith(status);
    });

    CLI::App* show = app.get_subcommand("show");
    auto o = std::make_shared<ShowMonitorsOptions>();
    CLI::App* monitors =
        show->add_subcommand("monitors", "Replicated monitors: leader, role, lag, who may take over (from etcd)");
    auto* by_pgdata = monitors->add_option("--pgdata", o->pgdata, "Data directory of one of the monitors");
    monitors->add_option("--etcd", o->etcd, "etcd endpoints, http://host:port[,...]")->excludes(by_pgdata);
    monitors->add_option("--monitor-cluster", o->cluster, "Cluster name in etcd")->capture_default_str();
    monitors->add_flag("--json", o->json, "JSON output");
    monitors->callback([o] {
        if (!o->pgdata.empty()) {
            const MonitorHaConfig c = load_monitor_ha_config(o->pgdata);
            show_monitors(c.etcd, c.cluster, o->request_timeout_ms, o->json);
            return;
        }
        if (o->etcd.empty()) throw CliError(ExitCode::BadArguments, "give --pgdata of a monitor, or --etcd");
        try {
            show_monitors(etcd::parse_endpoints(o->etcd), o->cluster, o->request_timeout_ms, o->json);
        } catch (const etcd::EtcdError& e) {
            throw CliError(ExitCode::BadArguments, e.what());
        }
    });
}

}  // namespace autoctl
