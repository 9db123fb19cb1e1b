// States, LSNs, synchronous_standby_names, the fencing rule, the transition table.
#include "group_builder.h"

#include "libautofailover/keeper_transitions.h"
#include "libautofailover/lsn.h"
#include "libautofailover/node_state.h"
#include "libautofailover/partition.h"
#include "libautofailover/replication_names.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <iostream>
#include <set>
#include <string>
#include <vector>

using namespace autofailover;
using namespace autofailover::testing;
using namespace std::chrono_literals;
using S = NodeState;

TEST_CASE("state names round-trip and match the SQL enum labels in order", "[vocabulary]") {
    const auto& states = all_node_states();
    REQUIRE(states.size() == kNodeStateCount);
    CHECK(to_string(states.front()) == "init");
    CHECK(to_string(states.back()) == "dropped");
    std::set<std::string_view> names;
    for (auto s : states) {
        names.insert(to_string(s));
        CHECK(parse_node_state(to_string(s)) == s);
    }
    CHECK(names.size() == kNodeStateCount);
    CHECK(to_string(S::ReportLsn) == "report_lsn");
    CHECK_FALSE(parse_node_state("unknown").has_value());
}

TEST_CASE("writable states are exactly the primary states that take writes", "[vocabulary]") {
    std::set<S> writable;
    for (auto s : all_node_states())
        if (is_writable(s)) writable.insert(s);
    CHECK(writable == std::set<S>{S::Single, S::WaitPrimary, S::Primary, S::JoinPrimary, S::ApplySettings});
    CHECK(belongs_to_primary(S::Draining));
    CHECK(belongs_to_primary(S::PrepareMaintenance));
    CHECK_FALSE(belongs_to_primary(S::Demoted));
    CHECK_FALSE(belongs_to_primary(S::Secondary));
}

TEST_CASE("LSNs parse and format like PostgreSQL's pg_lsn", "[lsn]") {
    CHECK(parse_lsn("16/B374D848") == (0x16ull << 32 | 0xB374D848ull));
    CHECK(parse_lsn("0/0") == 0u);
    CHECK(format_lsn(0x16ull << 32 | 0xB374D848ull) == "16/B374D848");
    CHECK(format_lsn(0) == "0/0");
    CHECK(parse_lsn(format_lsn(0xFFFFFFFFFFFFFFFFull)) == 0xFFFFFFFFFFFFFFFFull);
    CHECK_FALSE(parse_lsn("16B374D848"));
    CHECK_FALSE(parse_lsn("/1"));
    CHECK_FALSE(parse_lsn("1/"));
    CHECK_FALSE(parse_lsn("1/123456789"));
    CHECK_FALSE(parse_lsn("G/1"));
}

TEST_CASE("standby names are autofailover_node_<id>", "[names]") {
    CHECK(standby_name(7) == "autofailover_node_7");
}

TEST_CASE("a standby's node id is read back from its application_name, nothing else is", "[names]") {
    CHECK(node_id_of_standby_name("autofailover_node_7") == std::optional<NodeId>(7));
    CHECK(node_id_of_standby_name(standby_name(123456789012)) == std::optional<NodeId>(123456789012));
    CHECK_FALSE(node_id_of_standby_name("autofailover_node_"));
    CHECK_FALSE(node_id_of_standby_name("autofailover_node_07"));
    CHECK_FALSE(node_id_of_standby_name("autofailover_node_7x"));
    CHECK_FALSE(node_id_of_standby_name("autofailover_node_-7"));
    CHECK_FALSE(node_id_of_standby_name("walreceiver"));
    CHECK_FALSE(node_id_of_standby_name("autofailover_node_1234567890123456789"));
}

TEST_CASE("synchronous_standby_names lists quorum secondaries by priority then id", "[names]") {
    FormationSettings settings;
    auto group = GroupBuilder()
                     .node(1, S::Primary)
                     .node(2, S::Secondary, 0x3000000, 50)
                     .node(3, S::Secondary, 0x3000000, 90)
                     .node(4, S::Secondary, 0x3000000, 50, false)  // async: never listed
                     .node(5, S::Secondary, 0x3000000, 50)
                     .build();
    CHECK(synchronous_standby_names(group, settings) ==
          "ANY 1 (autofailover_node_3, autofailover_node_2, autofailover_node_5)");
    settings.number_sync_standbys = 2;
    CHECK(synchronous_standby_names(group, settings) ==
          "ANY 2 (autofailover_node_3, autofailover_node_2, autofailover_node_5)");
}

TEST_CASE("synchronous_standby_names is empty for wait_primary, single, or without quorum standbys", "[names]") {
    FormationSettings settings;
    CHECK(synchronous_standby_names(GroupBuilder().node(1, S::WaitPrimary).node(2, S::Secondary).build(), settings) == "");
    CHECK(synchronous_standby_names(GroupBuilder().node(1, S::Single).build(), settings) == "");
    CHECK(synchronous_standby_names(
              GroupBuilder().node(1, S::Primary).node(2, S::Secondary, 1, 50, false).build(), settings) == "");
    CHECK(synchronous_standby_names(GroupBuilder().node(2, S::Secondary).build(), settings) == "");
}

TEST_CASE("synchronous_standby_names never says ANY 0", "[names]") {
    FormationSettings settings;
    settings.number_sync_standbys = 0;
    auto names = synchronous_standby_names(GroupBuilder().node(1, S::Primary).node(2, S::Secondary).build(), settings);
    CHECK(names == "ANY 1 (autofailover_node_2)");
}

TEST_CASE("a sync primary whose quorum standbys all fell behind keeps a blocking list", "[names]") {
    // number_sync_standbys >= 1 blocks commits by design; '' here would silently
    // acknowledge commits that no standby holds.
    FormationSettings settings;
    settings.number_sync_standbys = 1;
    auto group = GroupBuilder().node(1, S::Primary).node(2, S::Catchingup).node(3, S::Maintenance).build();
    CHECK(synchronous_standby_names(group, settings) == "ANY 1 (autofailover_node_2)");
}

TEST_CASE("a standby waiting for maintenance leaves the list", "[names]") {
    FormationSettings settings;
    auto group = GroupBuilder().node(1, S::Primary).node(2, S::WaitMaintenance).node(3, S::Secondary).build();
    CHECK(synchronous_standby_names(group, settings) == "ANY 1 (autofailover_node_3)");
}

TEST_CASE("synchronous_standby_names parsing", "[syncrep]") {
    auto any = parse_synchronous_standby_names("ANY 2 (autofailover_node_1, autofailover_node_3, \"autofailover_node_4\")");
    CHECK(any.count == 2);
    CHECK(any.names == std::vector<std::string>{"autofailover_node_1", "autofailover_node_3", "autofailover_node_4"});
    CHECK(parse_synchronous_standby_names("").count == 0);
    CHECK(parse_synchronous_standby_names("").names.empty());
    auto plain = parse_synchronous_standby_names("autofailover_node_2");
    CHECK(plain.count == 1);
    CHECK(plain.names == std::vector<std::string>{"autofailover_node_2"});
}

TEST_CASE("parse_synchronous_standby_names reads back what synchronous_standby_names writes", "[names][syncrep]") {
    FormationSettings settings;
    for (int number_sync : {0, 1, 2, 3}) {
        settings.number_sync_standbys = number_sync;
        auto group = GroupBuilder()
                         .node(1, S::Primary)
                         .node(2, S::Secondary, 0x3000000, 50)
                         .node(3, S::Secondary, 0x3000000, 90)
                         .node(4, S::Secondary, 0x3000000, 50, false)  // async: never listed
                         .node(12, S::Secondary, 0x3000000, 50)
                         .build();
        const std::string written = synchronous_standby_names(group, settings);
        const SyncStandbyNames read = parse_synchronous_standby_names(written);
        CHECK(read.count == std::max(1, number_sync));
        CHECK(read.names ==
              std::vector<std::string>{standby_name(3), standby_name(2), standby_name(12)});
        for (const auto& name : read.names) CHECK(node_id_of_standby_name(name).has_value());
    }
    // No synchronous replication: "" both ways.
    const std::string none = synchronous_standby_names(GroupBuilder().node(1, S::Single).build(), settings);
    CHECK(none.empty());
    CHECK(parse_synchronous_standby_names(none).count == 0);
    CHECK(parse_synchronous_standby_names(none).names.empty());
}

TEST_CASE("primary fences only when it reaches neither the monitor nor a standby", "[partition]") {
    const TimePoint now = TimePoint{} + 1h;
    PartitionView view;
    view.now = now;
    view.has_standbys = true;
    view.last_monitor_contact = now - 2s;
    view.last_standby_contact = now - 2s;
    CHECK(primary_is_partitioned(view, 1500ms));
    view.last_standby_contact = now - 1s;
    CHECK_FALSE(primary_is_partitioned(view, 1500ms));  // a standby still streams
    view.last_standby_contact = now - 2s;
    view.last_monitor_contact = now - 1s;
    CHECK_FALSE(primary_is_partitioned(view, 1500ms));  // the monitor is reachable
}

TEST_CASE("fencing: a missing standby contact counts as old, a missing monitor contact as no view", "[partition]") {
    const TimePoint now = TimePoint{} + 1h;
    PartitionView view;
    view.now = now;
    view.has_standbys = true;
    view.last_monitor_contact = now - 2s;
    CHECK(primary_is_partitioned(view, 1500ms));
    view.last_monitor_contact.reset();
    CHECK_FALSE(primary_is_partitioned(view, 1500ms));
    view.last_monitor_contact = now - 2s;
    view.has_standbys = false;  // a lone primary: nobody can replace it
    CHECK_FALSE(primary_is_partitioned(view, 1500ms));
}

TEST_CASE("transition table has one action per edge and keeper_path walks it", "[transitions]") {
    std::set<std::pair<S, S>> edges;
    for (const auto& t : keeper_transitions()) {
        CHECK(edges.insert({t.from, t.to}).second);  // no duplicate edge
        CHECK(t.from != t.to);
        CHECK_FALSE(t.description.empty());
        CHECK(find_keeper_transition(t.from, t.to) == &t);
    }
    CHECK(find_keeper_transition(S::Secondary, S::Single) == nullptr);
    CHECK(keeper_path(S::Secondary, S::Secondary)->empty());
    auto path = keeper_path(S::DemoteTimeout, S::ApplySettings);
    REQUIRE(path);
    REQUIRE(path->size() == 3);
    CHECK((*path)[0].action == KeeperAction::ResumeAsPrimary);
    CHECK((*path)[1].action == KeeperAction::EnableSyncRep);
    CHECK((*path)[2].action == KeeperAction::ApplySettings);
    CHECK(find_keeper_transition(S::WaitStandby, S::Catchingup)->action == KeeperAction::InitStandby);
    CHECK(find_keeper_transition(S::Demoted, S::Catchingup)->action == KeeperAction::RewindOrReinit);
    CHECK(find_keeper_transition(S::PreparePromotion, S::WaitPrimary)->action == KeeperAction::Promote);
    CHECK(find_keeper_transition(S::Primary, S::Draining)->action == KeeperAction::StopPostgres);
    CHECK(find_keeper_transition(S::Primary, S::Demoted)->action == KeeperAction::Fence);
    CHECK_FALSE(keeper_path(S::Dropped, S::Primary));  // a removed node never comes back by itself
}

TEST_CASE("no standby reaches a writable state without promotion", "[transitions]") {
    for (const auto& t : keeper_transitions())
        if (is_writable(t.to) && !belongs_to_primary(t.from) && t.from != S::Init && t.from != S::ReportLsn) {
            INFO(to_string(t.from) << " -> " << to_string(t.to));
            CHECK(t.action == KeeperAction::Promote);
        }
}

TEST_CASE("a keeper path to a goal outside the primary's states never passes through a writable state", "[transitions]") {
    for (auto from : all_node_states())
        for (auto to : all_node_states()) {
            if (belongs_to_primary(to)) continue;
            auto path = keeper_path(from, to);
            if (!path) continue;
            for (std::size_t i = 0; i + 1 < path->size(); ++i) {
                INFO(to_string(from) << " -> " << to_string(to) << " via " << to_string((*path)[i].to));
                CHECK_FALSE(is_writable((*path)[i].to));
            }
        }
}

TEST_CASE("a resumed primary reaches primary only through enable_sync_rep", "[transitions]") {
    // Commits it acknowledged alone before stopping must reach the sync standbys
    // before it reports a state in which a failover is considered safe.
    for (auto from : {S::Draining, S::DemoteTimeout, S::PrepareMaintenance}) {
        auto path = keeper_path(from, S::Primary);
        REQUIRE(path);
        CHECK(path->back().action == KeeperAction::EnableSyncRep);
    }
}

// Hidden: `autofailover_unit_tests "[fsm-doc]"` prints the transition table of docs/fsm.md.
TEST_CASE("print the keeper transition table as markdown", "[.][fsm-doc]") {
    std::cout << "| from | to | keeper action | why |\n|---|---|---|---|\n";
    for (const auto& t : keeper_transitions())
        if (t.to != S::Dropped)
            std::cout << "| " << to_string(t.from) << " | " << to_string(t.to) << " | " << to_string(t.action) << " | "
                      << t.description << " |\n";
    std::cout << "| any state | dropped | drop_node | removed: stop Postgres and unregister |\n";
    SUCCEED();
}
