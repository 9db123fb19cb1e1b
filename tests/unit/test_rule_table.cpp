// decide() as one table of named rules (libautofailover/decide.cpp, docs/fsm.md "Rules"): every assignment names
// the rule that made it, and a second assignment to a node in the same pass is recorded, not silently dropped.
#include "group_builder.h"

#include "libautofailover/decide.h"
#include "libautofailover/decision_context.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <string>

using namespace autofailover;
using namespace autofailover::testing;
using namespace std::chrono_literals;
using S = NodeState;

TEST_CASE("decide() runs a table of uniquely named rules, failover rules first", "[rules]") {
    const auto names = decide_rule_names();
    REQUIRE(names.size() >= 18);
    CHECK(names.front() == "lone_node_becomes_single");
    CHECK(names[1] == "primary_failed");
    CHECK(names.back() == "enable_sync_replication");
    CHECK(std::set<std::string_view>(names.begin(), names.end()).size() == names.size());
}

TEST_CASE("every assignment names the rule of the table that made it", "[rules]") {
    const auto names = decide_rule_names();
    auto rule_of = [&](const Decision& d, NodeId id) {
        for (const auto& a : d.assignments)
            if (a.node_id == id) {
                CHECK(std::find(names.begin(), names.end(), a.rule) != names.end());
                return a.rule;
            }
        return std::string("none");
    };
    GroupBuilder failed;  // the primary's keeper silent and its probes failing for 3 s
    failed.node(1, S::Primary).dead(3s).node(2, S::Secondary).node(3, S::Secondary);
    const Decision d = decide(failed.build(), FormationSettings{}, failed.clock());
    INFO(describe(d));
    CHECK(rule_of(d, 1) == "primary_failed");
    CHECK(rule_of(d, 2) == "primary_failed");

    GroupBuilder joining;
    joining.node(1, S::Primary).node(2, S::WaitStandby);
    const Decision j = decide(joining.build(), FormationSettings{}, joining.clock());
    INFO(describe(j));
    CHECK(rule_of(j, 2) == "standby_allowed_to_join");
    CHECK(j.shadowed.empty());
}

TEST_CASE("a second assignment to a node in one pass is kept in Decision::shadowed with its rule", "[rules]") {
    GroupBuilder b;
    b.node(1, S::Primary).node(2, S::Secondary);
    const auto group = b.build();
    const FormationSettings settings;
    detail::DecisionContext ctx(group, settings, b.clock());
    ctx.run_rule("first", [](detail::DecisionContext& c) { c.assign(2, S::Catchingup, "first says catchingup"); });
    ctx.run_rule("second", [](detail::DecisionContext& c) { c.assign(2, S::ReportLsn, "second says report_lsn"); });
    const Decision d = ctx.take();
    REQUIRE(d.assignments.size() == 1);
    CHECK(d.assignments[0].goal == S::Catchingup);
    CHECK(d.assignments[0].rule == "first");
    REQUIRE(d.shadowed.size() == 1);
    CHECK(d.shadowed[0].goal == S::ReportLsn);
    CHECK(d.shadowed[0].rule == "second");
}
