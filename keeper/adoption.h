// `autoctl enable monitor`: hand a running node to a new, empty monitor that
// replaces one lost for good (docs/monitor-ha.md, M6). The keeper never does this
// by itself: a monitor that does not know the node may be an impostor or a wiped
// one, so only the operator, with the new monitor's bootstrap password, moves it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace autofailover::keeper {

struct AdoptOptions {
    std::string pgdata;                 // required
    std::string state_dir;              // empty: default_state_dir(pgdata)
    std::string monitor_uri;            // required: the new monitor, as autoctl create monitor printed it
    std::string monitor_password_file;  // first line: the new monitor's autofailover_keeper password
    // Override what state.json holds (the last values the old monitor assigned).
    std::optional<int> candidate_priority;
    std::optional<bool> replication_quorum;
};

struct AdoptedNode {
    std::int64_t node_id = 0;
    std::string name;
    int group_id = 0;
    std::string reported_state;  // what the keeper is in (and told the new monitor)
    std::string goal_state;      // what the new monitor assigned
    bool keeper_signalled = false;  // a running keeper was sent SIGHUP to reload keeper.json
};

// Observes the local Postgres (it must run and agree with state.json), calls
// adopt_node on the new monitor as the bootstrap role, writes the node's new
// credential to monitor.pgpass and the new monitor to keeper.json (each write
// temp + fsync + rename, pgpass first), then sends SIGHUP to a running keeper.
// Throws KeeperError: BadArguments (1), MonitorError (2: unreachable or refused,
// with the monitor's reason), LocalPostgres (4).
AdoptedNode adopt_by_new_monitor(const AdoptOptions& options);

}  // namespace autofailover::keeper
