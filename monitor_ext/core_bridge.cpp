// The core side of the bridge: builds value snapshots from plain rows, calls the
// pure core, copies the answer into caller-owned buffers. Never includes a
// PostgreSQL header; every exception stops here.
#include "monitor_ext/core_bridge.h"

#include "libautofailover/decide.h"
#include "libautofailover/group_snapshot.h"
#include "libautofailover/input_validation.h"
#include "libautofailover/node_state.h"
#include "libautofailover/operator_commands.h"
#include "libautofailover/replication_names.h"
#include "libautofailover/settings.h"
#include "libautofailover/steady_group.h"
#include "libautofailover/what_if.h"

#include <chrono>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>

namespace autofailover_bridge {
namespace {

namespace af = autofailover;

void copy_text(std::string_view text, char* out, std::size_t size) {
    const std::size_t n = text.size() < size - 1 ? text.size() : size - 1;
    std::memcpy(out, text.data(), n);
    out[n] = '\0';
}

// For error messages only: cut at a UTF-8 character boundary, marked with "...".
void copy_message(std::string_view text, char* out, std::size_t size) {
    if (text.size() < size) return copy_text(text, out, size);
    std::size_t n = size - 4;
    while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
    std::memcpy(out, text.data(), n);
    std::memcpy(out + n, "...", 4);
}

// Puts `text` in the buffer whole, or only counts it when it does not fit (the
// call then ends with NeedMoreText); the answer points at "" meanwhile.
const char* put_text(TextBuffer& buffer, std::string_view text) {
    const std::size_t size = text.size() + 1;
    buffer.needed += size;
    if (buffer.data == nullptr || buffer.used + size > buffer.capacity) return "";
    char* at = buffer.data + buffer.used;
    std::memcpy(at, text.data(), text.size());
    at[text.size()] = '\0';
    buffer.used += size;
    return at;
}

BridgeResult ok() {
    BridgeResult result{};
    result.outcome = Outcome::Ok;
    return result;
}

BridgeResult failed(Outcome outcome, std::string_view message) {
    BridgeResult result{};
    result.outcome = outcome;
    copy_message(message, result.message, sizeof result.message);
    return result;
}

af::TimePoint from_us(std::int64_t us) { return af::TimePoint{std::chrono::microseconds{us}}; }

af::NodeState parse_state(const char* text) {
    auto state = af::parse_node_state(text ? text : "");
    if (!state) throw std::invalid_argument(std::string("unknown node state \"") + (text ? text : "") + "\"");
    return *state;
}

af::Health parse_health(const char* text) {
    const std::string_view health = text ? text : "";
    if (health == "good") return af::Health::Good;
    if (health == "bad") return af::Health::Bad;
    return af::Health::Unknown;
}

af::GroupSnapshot to_snapshot(const GroupInput& input) {
    af::GroupSnapshot group;
    group.formation = input.formation;
    group.group_id = input.group_id;
    group.nodes.reserve(input.node_count);
    for (std::size_t i = 0; i < input.node_count; ++i) {
        const NodeRow& row = input.nodes[i];
        af::NodeSnapshot node;
        node.id = row.node_id;
        node.name = row.name;
        node.host = row.host;
        node.port = row.port;
        node.reported_state = parse_state(row.reported_state);
        node.goal_state = parse_state(row.goal_state);
        node.goal_assigned_at = from_us(row.goal_assigned_at_us);
        if (row.has_last_report) node.last_report = from_us(row.last_report_us);
        node.pg_is_running = row.pg_is_running;
        node.timeline = row.timeline;
        node.lsn = row.lsn;
        node.sync_state = row.sync_state ? row.sync_state : "";
        node.health = parse_health(row.health);
        if (row.has_last_health_check) node.last_health_check = from_us(row.last_health_check_us);
        node.candidate_priority = row.candidate_priority;
        node.replication_quorum = row.replication_quorum;
        if (row.has_promotion_vetoed_at) node.promotion_vetoed_at = from_us(row.promotion_vetoed_at_us);
        for (std::size_t s = 0; s < row.streaming_count; ++s)
            node.streaming_standbys.push_back(af::StreamingStandby{row.streaming_ids[s], row.streaming_flush_lsns[s]});
        group.nodes.push_back(std::move(node));
    }
    if (input.has_adoption_deadline) group.adoption_deadline = from_us(input.adoption_deadline_us);
    return group;
}

af::FormationSettings to_settings(const SettingsRow& row) {
    af::FormationSettings settings;
    settings.number_sync_standbys = row.number_sync_standbys;
    settings.timeouts.node_considered_unhealthy_timeout = std::chrono::milliseconds{row.node_considered_unhealthy_timeout_ms};
    settings.timeouts.network_partition_timeout = std::chrono::milliseconds{row.network_partition_timeout_ms};
    settings.timeouts.fencing_margin = std::chrono::milliseconds{row.fencing_margin_ms};
    settings.timeouts.startup_grace_period = std::chrono::milliseconds{row.startup_grace_period_ms};
    settings.timeouts.switchover_timeout = std::chrono::milliseconds{row.switchover_timeout_ms};
    settings.timeouts.promotion_veto_timeout = std::chrono::milliseconds{row.promotion_veto_timeout_ms};
    settings.timeouts.primary_suspect_timeout = std::chrono::milliseconds{row.primary_suspect_timeout_ms};
    return settings;
}

af::MonitorClock to_clock(const GroupInput& input) {
    return af::MonitorClock{from_us(input.now_us), from_us(input.monitor_started_us)};
}

void store_assignment(const af::Assignment& assignment, DecisionOutput& out) {
    if (out.count >= out.capacity) throw std::length_error("the decision assigned more goal states than the group has nodes");
    AssignmentRow& row = out.assignments[out.count++];
    row.node_id = assignment.node_id;
    copy_text(af::to_string(assignment.goal), row.goal, sizeof row.goal);
    row.reason = put_text(out.text, assignment.reason);
    row.rule = put_text(out.text, assignment.rule);
}

void store_decision(const af::Decision& decision, DecisionOutput& out) {
    out.count = 0;
    for (const auto& assignment : decision.assignments) store_assignment(assignment, out);
    out.waiting_reason = put_text(out.text, decision.waiting_reason);
}

// Runs `body` and turns every exception into a BridgeResult: the PostgreSQL
// side raises ERROR only after this frame (and its C++ objects) are gone.
// `text` is the answer's TextBuffer: emptied first, checked last.
template <typename Body>
BridgeResult guarded(TextBuffer* text, Body&& body) {
    try {
        if (text != nullptr) text->used = text->needed = 0;
        body();
        if (text != nullptr && text->needed > text->capacity) {
            BridgeResult result{};
            result.outcome = Outcome::NeedMoreText;
            return result;
        }
        return ok();
    } catch (const af::OperatorError& error) {
        return failed(Outcome::OperatorRefused, error.what());
    } catch (const std::exception& error) {
        return failed(Outcome::InternalError, error.what());
    } catch (...) {
        return failed(Outcome::InternalError, "unknown C++ exception in the autofailover core");
    }
}

}  // namespace

BridgeResult run_decide(const GroupInput& input, DecisionOutput& out) {
    return guarded(&out.text, [&] {
        const auto group = to_snapshot(input);
        store_decision(af::decide(group, to_settings(input.settings), to_clock(input)), out);
    });
}

BridgeResult run_initial_assignment(const GroupInput& input, std::int64_t new_node_id, int candidate_priority,
                                    DecisionOutput& out) {
    return guarded(&out.text, [&] {
        const auto group = to_snapshot(input);
        out.count = 0;
        out.waiting_reason = put_text(out.text, "");
        store_assignment(af::initial_assignment(group, new_node_id, candidate_priority), out);
    });
}

BridgeResult run_adoption_assignment(const GroupInput& input, std::int64_t node_id, const char* reported_state,
                                     int timeline, DecisionOutput& out) {
    return guarded(&out.text, [&] {
        const auto group = to_snapshot(input);
        out.count = 0;
        out.waiting_reason = put_text(out.text, "");
        store_assignment(af::adoption_assignment(group, node_id, parse_state(reported_state), timeline), out);
    });
}

namespace {
af::Decision plan_operator(const GroupInput& input, const OperatorInput& command) {
    const auto group = to_snapshot(input);
    const auto settings = to_settings(input.settings);
    const auto clock = to_clock(input);
    switch (command.command) {
        case OperatorCommand::Switchover:
            return af::plan_switchover(group, settings, clock);
        case OperatorCommand::Promotion:
            return af::plan_switchover(group, settings, clock, command.target);
        case OperatorCommand::Failover:
            return af::plan_failover(group, settings, clock, command.accept_data_loss);
        case OperatorCommand::StartMaintenance:
            return af::plan_start_maintenance(group, settings, clock, command.target);
        case OperatorCommand::StopMaintenance:
            return af::plan_stop_maintenance(group, settings, clock, command.target);
        case OperatorCommand::ApplySettings:
            return af::plan_apply_settings(group, settings, clock, command.what_changed ? command.what_changed : "");
        case OperatorCommand::RemoveNode:
            return af::plan_remove_node(group, settings, clock, command.target);
    }
    throw std::invalid_argument("unknown operator command");
}
}  // namespace

BridgeResult run_operator(const GroupInput& input, const OperatorInput& command, DecisionOutput& out) {
    return guarded(&out.text, [&] { store_decision(plan_operator(input, command), out); });
}

BridgeResult run_operator_preview(const GroupInput& input, const OperatorInput& command, DecisionOutput& plan,
                                  PreviewOutput& out) {
    return guarded(&plan.text, [&] {
        const af::WhatIf w = af::what_if(to_snapshot(input), to_settings(input.settings), to_clock(input),
                                         plan_operator(input, command));
        store_decision(w.plan, plan);
        out.has_promoted = w.promoted.has_value();
        out.promoted_node_id = w.promoted.value_or(0);
        out.rounds = w.rounds;
        out.waiting = put_text(plan.text, w.waiting);
        out.waited_ms = w.waited.count();
        out.first_wait = put_text(plan.text, w.first_wait);
    });
}

BridgeResult keeper_view(const GroupInput& input, std::int64_t node_id, KeeperView& out) {
    return guarded(&out.text, [&] {
        const auto group = to_snapshot(input);
        const auto settings = to_settings(input.settings);
        const TextBuffer text = out.text;
        out = KeeperView{};
        out.text = text;
        if (const auto primary = af::find_primary(group)) {
            out.has_primary = true;
            out.primary_node_id = *primary;
        }
        out.synchronous_standby_names = put_text(out.text, af::synchronous_standby_names(group, settings));
        const af::NodeSnapshot* node = node_id != 0 ? group.find(node_id) : nullptr;
        if (node != nullptr && node->goal_state == af::NodeState::FastForward) {
            if (const auto source = af::choose_fast_forward_source(group, node_id)) {
                out.has_upstream = true;
                out.upstream_node_id = *source;
            }
        }
    });
}

BridgeResult node_health(const GroupInput& input, std::int64_t node_id, NodeHealthView& out) {
    return guarded(nullptr, [&] {
        const auto group = to_snapshot(input);
        const auto settings = to_settings(input.settings);
        const auto clock = to_clock(input);
        const af::NodeSnapshot* node = group.find(node_id);
        if (node == nullptr) throw std::invalid_argument("node is not in the loaded group");
        out.keeper_reporting = af::keeper_is_reporting(*node, settings, clock);
        out.unhealthy = af::node_is_unhealthy(*node, settings, clock);
    });
}

BridgeResult group_is_steady(const GroupInput& input, bool& steady) {
    steady = false;  // an exception leaves it false: the full decision runs
    return guarded(nullptr, [&] {
        steady = af::group_is_steady(to_snapshot(input), to_settings(input.settings), to_clock(input));
    });
}

void validation_problem(Validated what, const char* text, std::size_t length, char* problem, std::size_t size) {
    try {
        const std::string_view value(text, length);
        std::string found;
        switch (what) {
            case Validated::Host: found = af::host_problem(value); break;
            case Validated::NodeName: found = af::node_name_problem(value); break;
            case Validated::ClientNetwork: found = af::client_network_problem(value); break;
            case Validated::ClientDatabase: found = af::client_database_problem(value); break;
            case Validated::ClientRole: found = af::client_role_problem(value); break;
        }
        copy_text(found, problem, size);
    } catch (...) {  // never let an exception reach PostgreSQL frames
        copy_text("could not be validated", problem, size);
    }
}

SettingsRow default_settings() {
    const af::FormationSettings defaults;
    const auto ms = [](std::chrono::milliseconds value) { return static_cast<int>(value.count()); };
    SettingsRow row{};
    row.number_sync_standbys = defaults.number_sync_standbys;
    row.node_considered_unhealthy_timeout_ms = ms(defaults.timeouts.node_considered_unhealthy_timeout);
    row.network_partition_timeout_ms = ms(defaults.timeouts.network_partition_timeout);
    row.fencing_margin_ms = ms(defaults.timeouts.fencing_margin);
    row.startup_grace_period_ms = ms(defaults.timeouts.startup_grace_period);
    row.switchover_timeout_ms = ms(defaults.timeouts.switchover_timeout);
    row.promotion_veto_timeout_ms = ms(defaults.timeouts.promotion_veto_timeout);
    row.primary_suspect_timeout_ms = ms(defaults.timeouts.primary_suspect_timeout);
    return row;
}

std::size_t node_state_count() { return af::kNodeStateCount; }

bool node_state_name(std::size_t index, char* out) {
    if (index >= af::kNodeStateCount) return false;
    try {
        copy_text(af::to_string(af::all_node_states()[index]), out, kStateLen);
        return true;
    } catch (...) {  // never let an exception reach PostgreSQL frames
        out[0] = '\0';
        return false;
    }
}

bool is_known_node_state(const char* name) {
    try {
        return name != nullptr && af::parse_node_state(name).has_value();
    } catch (...) {
        return false;
    }
}

}  // namespace autofailover_bridge
