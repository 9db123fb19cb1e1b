// Randomized, deterministic simulation of whole groups. The seed is printed;
// AUTOFAILOVER_SIM_SEED=<seed> reruns one seed, AUTOFAILOVER_SIM_STEPS=<n>
// changes the number of random steps per seed.
#include "simulation.h"

#include "libautofailover/keeper_transitions.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <random>

using namespace autofailover;
using namespace autofailover::sim;

namespace {

constexpr int kFaultSteps = 300;     // random steps between two heal phases
constexpr int kConvergeSteps = 400;  // bound on the steps to full health after healing

std::optional<std::uint64_t> env_number(const char* name) {
    const char* value = std::getenv(name);
    if (!value || !*value) return std::nullopt;
    return std::strtoull(value, nullptr, 10);
}

SimOptions options_for(std::uint64_t seed) {
    std::mt19937_64 pick(seed ^ 0x5eedULL);
    SimOptions o;
    o.seed = seed;
    o.node_count = 3 + static_cast<int>(pick() % 2);
    o.number_sync_standbys = static_cast<int>(pick() % (o.node_count - 1));  // 0 .. standbys - 1
    o.last_node_async = pick() % 3 == 0;
    o.stale_requests = env_number("AUTOFAILOVER_SIM_STALE").value_or(1) != 0;
    o.refuse_stale_sessions = env_number("AUTOFAILOVER_SIM_REFUSE_STALE").value_or(1) != 0;
    return o;
}

struct Outcome {
    bool ok = true;
    int steps = 0;
    std::set<std::pair<NodeState, NodeState>> pairs;
    std::set<std::string> overrides;  // "rule that won over rule that was shadowed"
};

// Faults for kFaultSteps, then heal and converge, until `random_steps` fault steps ran.
bool drive(Simulation& sim, int random_steps) {
    for (int done = 0; done < random_steps; done += kFaultSteps)
        if (!sim.run_random(kFaultSteps) || !sim.heal_and_converge(kConvergeSteps)) return false;
    return true;
}

Outcome run_seed(std::uint64_t seed, int random_steps) {
    const SimOptions o = options_for(seed);
    Simulation sim(o);
    Outcome out;
    out.ok = drive(sim, random_steps);
    out.steps = sim.steps_run();
    out.pairs = sim.assigned_pairs();
    out.overrides = sim.overrides();
    std::cout << "simulation seed=" << seed << " nodes=" << o.node_count << " number_sync_standbys=" << o.number_sync_standbys
              << (o.last_node_async ? " (last node async)" : "") << ": " << sim.steps_run() << " steps, "
              << sim.acknowledged_commits() << " acknowledged commits, " << sim.failovers() << " failovers, "
              << sim.switchovers() << " switchovers, " << sim.promotions() << " promotions, " << sim.overridden()
              << " overridden assignments"
              << (out.ok ? "" : " -- FAILED") << "\n";
    if (!out.ok) {
        std::cout << "FAILURE (reproduce with AUTOFAILOVER_SIM_SEED=" << seed << "): " << sim.failure()
                  << "\nlast steps:\n" << sim.trace() << std::flush;
    }
    return out;
}

std::vector<std::uint64_t> seeds_to_run() {
    if (auto seed = env_number("AUTOFAILOVER_SIM_SEED")) return {*seed};
    // Fixed seeds keep CI reproducible; one fresh seed per run keeps exploring. 32 of
    // them cover every group shape several times: with 4 fixed seeds, an injected
    // `ANY n-1` in synchronous_standby_names went unnoticed; about one seed in five
    // of the number_sync_standbys = 2 groups catches it (seed 6 does).
    const std::uint64_t fresh =
        static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) % 1000000007ULL;
    std::vector<std::uint64_t> seeds;
    for (std::uint64_t seed = 1; seed <= 32; ++seed) seeds.push_back(seed);
    seeds.push_back(fresh);
    return seeds;
}

}  // namespace

TEST_CASE("randomized simulation: no lost acknowledged commit, no split brain, convergence after healing",
          "[simulation]") {
    const int steps = static_cast<int>(env_number("AUTOFAILOVER_SIM_STEPS").value_or(2400));
    int total = 0;
    for (std::uint64_t seed : seeds_to_run()) {
        const Outcome out = run_seed(seed, steps);
        total += out.steps;
        INFO("seed " << seed);
        REQUIRE(out.ok);
    }
    std::cout << "simulation: " << total << " steps in all\n";
    CHECK(total >= 10000);
}

TEST_CASE("every goal decide() assigns is reachable by the keeper from the reported state", "[simulation][reachability]") {
    std::set<std::pair<NodeState, NodeState>> pairs;
    for (std::uint64_t seed = 100; seed < 106; ++seed) {
        const Outcome out = run_seed(seed, 1200);
        pairs.insert(out.pairs.begin(), out.pairs.end());
    }
    std::cout << "reachability: " << pairs.size() << " distinct (reported, goal) pairs\n";
    CHECK(pairs.size() >= 30);
    for (const auto& [reported, goal] : pairs) {
        INFO(to_string(reported) << " -> " << to_string(goal));
        CHECK(keeper_path(reported, goal).has_value());
    }
}

// make check's own ctest entry (tests/CMakeLists.txt, "simulation.million_steps"):
// 32 fixed seeds and one fresh seed, AUTOFAILOVER_SIM_STEPS (default 30,000) random
// steps each, at least 1,000,000 steps in all. Hidden from the unit run.
TEST_CASE("a million simulated steps: no lost acknowledged commit, no split brain, convergence", "[.][simulation-long]") {
    const int steps = static_cast<int>(env_number("AUTOFAILOVER_SIM_STEPS").value_or(30000));
    const auto started = std::chrono::steady_clock::now();
    long long total = 0;
    std::set<std::string> overrides;
    for (std::uint64_t seed : seeds_to_run()) {
        const Outcome out = run_seed(seed, steps);
        total += out.steps;
        overrides.insert(out.overrides.begin(), out.overrides.end());
        INFO("seed " << seed);
        REQUIRE(out.ok);
    }
    // Where the rule order decided (docs/fsm.md, "Rules"): the first rule's goal stood, the later one's was shadowed.
    for (const auto& o : overrides) std::cout << "simulation: rule precedence used: " << o << "\n";
    const auto seconds =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count() / 1000.0;
    std::cout << "simulation: " << total << " steps in all in " << seconds << " s" << std::endl;
    if (!env_number("AUTOFAILOVER_SIM_SEED")) CHECK(total >= 1000000);
}

// Seed 16 with stale requests: node_1's report `primary`, sent before it applied a list
// without node_3, was served 3.2 s late; taken as proof of the new list, it let node_3 go
// into maintenance, and node_2, lagging, was promoted without a commit only node_3 held.
// The monitor now refuses a report from an older keeper session (the model's
// refuse_stale_sessions; the SQL side: regress/specs/stale_node_active.spec). If the model
// changes, this seed may stop reaching the bug: then find a new one (the first check). Since the
// early freeze of a suspected primary (primary_suspect_freeze) seed 16 no longer gets there; 330 is
// the only seed of 1..400 that does (searched 2026-11-29).
TEST_CASE("a report served after a newer one from the same keeper is refused", "[simulation][stale]") {
    SimOptions o = options_for(330);
    o.stale_requests = true;
    o.refuse_stale_sessions = false;
    Simulation without(o);
    const bool bug_reached = !drive(without, 8000);
    CHECK(bug_reached);
    CHECK_THAT(without.failure(), Catch::Contains("ACKNOWLEDGED COMMIT LOST"));
    o.refuse_stale_sessions = true;
    Simulation with(o);
    CHECK(drive(with, 8000));
}
