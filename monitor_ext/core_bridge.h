// The only door between the PostgreSQL side of the extension and the pure core.
// Plain structs and functions: no PostgreSQL header and no C++ object crosses
// it, so the PostgreSQL side never holds a C++ object that a longjmp could skip,
// and the core side never calls anything that can elog(ERROR). Every bridge
// function catches all exceptions and reports them through BridgeResult.
#pragma once

#include <cstddef>
#include <cstdint>

namespace autofailover_bridge {

// Buffers are allocated by the PostgreSQL side before the call, so the core side
// never allocates PostgreSQL memory. State names fit a fixed size; error messages
// are cut at kMessageLen (with "..."); every other text (reasons, waiting reasons,
// synchronous_standby_names) goes whole into a TextBuffer.
constexpr std::size_t kStateLen = 32;
constexpr std::size_t kMessageLen = 1024;

// NeedMoreText: the caller's TextBuffer was too small; it holds the size needed,
// and the call, deterministic, gives the same answer again with that much room.
enum class Outcome { Ok = 0, OperatorRefused = 1, InternalError = 2, NeedMoreText = 3 };

struct BridgeResult {
    Outcome outcome;
    char message[kMessageLen];
};

// Room for the texts of one answer, NUL-terminated one after another; the
// answer's `const char*` fields point into `data`.
struct TextBuffer {
    char* data;
    std::size_t capacity;
    std::size_t used;    // set by the core side
    std::size_t needed;  // set by the core side: what all texts of the answer take
};

// One node row as loaded by SPI. Strings point into PostgreSQL memory that
// outlives the call; times are microseconds since the Unix epoch.
struct NodeRow {
    std::int64_t node_id;
    const char* name;
    const char* host;
    int port;
    const char* reported_state;
    const char* goal_state;
    std::int64_t goal_assigned_at_us;
    bool has_last_report;
    std::int64_t last_report_us;
    bool pg_is_running;
    int timeline;
    std::uint64_t lsn;
    const char* sync_state;
    const char* health;  // "unknown" | "bad" | "good"
    bool has_last_health_check;
    std::int64_t last_health_check_us;
    int candidate_priority;
    bool replication_quorum;
    // The standbys this node's keeper last saw streaming (pg_stat_replication), with their flush LSNs.
    const std::int64_t* streaming_ids;
    const std::uint64_t* streaming_flush_lsns;
    std::size_t streaming_count;
    // pre_promote veto (autofailover.promotion_vetoes).
    bool has_promotion_vetoed_at;
    std::int64_t promotion_vetoed_at_us;
};

struct SettingsRow {
    int number_sync_standbys;
    int node_considered_unhealthy_timeout_ms;
    int network_partition_timeout_ms;
    int fencing_margin_ms;
    int startup_grace_period_ms;
    int switchover_timeout_ms;
    int promotion_veto_timeout_ms;
    int primary_suspect_timeout_ms;  // early freeze of a suspected primary (docs/settings.md)
};

struct GroupInput {
    const char* formation;
    int group_id;
    NodeRow* nodes;  // the PostgreSQL side updates goal_state after storing a decision
    std::size_t node_count;
    SettingsRow settings;
    std::int64_t now_us;
    std::int64_t monitor_started_us;
    // groups.adoption_deadline (docs/monitor-ha.md, M6); has_ false when NULL.
    bool has_adoption_deadline;
    std::int64_t adoption_deadline_us;
    // PostgreSQL side only (the core ignores it): the stored waiting_reason, so
    // an unchanged one is not rewritten on every call.
    const char* stored_waiting_reason;
};

struct AssignmentRow {
    std::int64_t node_id;
    char goal[kStateLen];
    const char* reason;  // in DecisionOutput::text
    const char* rule;    // the decide() rule that assigned it (in DecisionOutput::text; "" for operator commands)
};

// Output of a decision: room for `capacity` assignments and `text`, allocated by the caller.
struct DecisionOutput {
    AssignmentRow* assignments;
    std::size_t capacity;
    std::size_t count;
    const char* waiting_reason;  // in `text`
    TextBuffer text;
};

enum class OperatorCommand {
    Switchover,
    Promotion,  // switchover to `target`
    Failover,
    StartMaintenance,
    StopMaintenance,
    ApplySettings,
    RemoveNode,
};

struct OperatorInput {
    OperatorCommand command;
    std::int64_t target;  // node for Promotion / maintenance / RemoveNode
    bool accept_data_loss;
    const char* what_changed;  // ApplySettings
};

// What a keeper needs back from node_active, derived from the stored decision.
struct KeeperView {
    bool has_primary;
    std::int64_t primary_node_id;
    bool has_upstream;
    std::int64_t upstream_node_id;
    const char* synchronous_standby_names;  // in `text`, exact whatever the group's size
    TextBuffer text;
};

struct NodeHealthView {
    bool keeper_reporting;
    bool unhealthy;
};

BridgeResult run_decide(const GroupInput& group, DecisionOutput& out);
BridgeResult run_initial_assignment(const GroupInput& group, std::int64_t new_node_id, int candidate_priority,
                                    DecisionOutput& out);
BridgeResult run_operator(const GroupInput& group, const OperatorInput& command, DecisionOutput& out);
// What-if (autoctl perform --dry-run, libautofailover/what_if.h): `plan` gets the
// command's first step, `out` who would be promoted or why the formation would
// wait (its text in plan.text). Nothing is stored by anyone.
struct PreviewOutput {
    bool has_promoted;
    std::int64_t promoted_node_id;
    int rounds;
    const char* waiting;  // in plan.text
    std::int64_t waited_ms;   // simulated time the formation waited on the way
    const char* first_wait;   // why, when the clock first had to move (in plan.text)
};
BridgeResult run_operator_preview(const GroupInput& group, const OperatorInput& command, DecisionOutput& plan,
                                  PreviewOutput& out);
// The goal of a node a new monitor adopts (af::adoption_assignment); a refused claim
// is an OperatorError (55000) with the core's reason.
BridgeResult run_adoption_assignment(const GroupInput& group, std::int64_t node_id, const char* reported_state,
                                     int timeline, DecisionOutput& out);
// `node_id` may be 0: only the group-wide parts (primary, standby names) are filled.
BridgeResult keeper_view(const GroupInput& group, std::int64_t node_id, KeeperView& out);
BridgeResult node_health(const GroupInput& group, std::int64_t node_id, NodeHealthView& out);
// node_active shortcut (libautofailover/steady_group.h): `steady` is true when a
// heartbeat that changes only times and LSNs cannot change the decision nor any
// keeper's answer, so the stored answer may be given without deciding again.
BridgeResult group_is_steady(const GroupInput& group, bool& steady);

// Input validation (libautofailover/input_validation.h): writes why `text` (UTF-8,
// `length` bytes) is refused into `problem` (`size` bytes, "" when accepted).
enum class Validated { Host, NodeName, ClientNetwork, ClientDatabase, ClientRole };
void validation_problem(Validated what, const char* text, std::size_t length, char* problem, std::size_t size);

// The core's default timeouts (libautofailover/settings.h), the GUC defaults.
SettingsRow default_settings();

// The core's state names in SQL enum order.
std::size_t node_state_count();
// Copies the name of state `index` into `out` (kStateLen bytes); false when out of range.
bool node_state_name(std::size_t index, char* out);
bool is_known_node_state(const char* name);

}  // namespace autofailover_bridge
