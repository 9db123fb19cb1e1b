// keeper.json hooks: which events fire (pure), and the runner with real programs:
// asynchronous, environment passed, a hung hook killed at its timeout.
#include "keeper/hooks.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <unistd.h>

using namespace autofailover;
using namespace autofailover::keeper;
namespace fs = std::filesystem;
using std::chrono::milliseconds;

namespace {

NodeObservation observed(NodeState s, bool fenced = false) {
    NodeObservation o;
    o.published = true;
    o.node = "node_1";
    o.formation = "default";
    o.reported = o.goal = s;
    o.fenced = fenced;
    o.primary_name = "node_1";
    o.primary_host = "10.0.0.1";
    o.primary_port = 5432;
    return o;
}

bool has_env(const HookEvent& e, const std::string& kv) {
    for (const auto& x : e.env)
        if (x == kv) return true;
    return false;
}

struct TempDir {
    fs::path path;
    TempDir() {
        std::string templ = (fs::temp_directory_path() / "af-hooks-XXXXXX").string();
        path = ::mkdtemp(templ.data());
    }
    ~TempDir() { fs::remove_all(path); }
};

std::string script(const fs::path& dir, const std::string& name, const std::string& body) {
    const fs::path p = dir / name;
    std::ofstream(p) << "#!/bin/sh\n" << body << "\n";
    fs::permissions(p, fs::perms::owner_all);
    return p.string();
}

bool wait_for_file(const fs::path& p, milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
        if (fs::exists(p) && fs::file_size(p) > 0) return true;
        std::this_thread::sleep_for(milliseconds(20));
    }
    return false;
}

std::string read(const fs::path& p) {
    std::ifstream f(p);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

}  // namespace

TEST_CASE("hooks: on_start first, on_role_change when the role changes, on_fence once", "[hooks]") {
    KeeperConfig::Hooks h;
    h.on_start = "/bin/start";
    h.on_role_change = "/bin/role";
    h.on_fence = "/bin/fence";
    auto standby = observed(NodeState::Secondary);
    auto start = hook_events(h, nullptr, standby);
    REQUIRE(start.size() == 1);
    CHECK(start[0].hook == "on_start");
    CHECK(hook_events(h, &standby, observed(NodeState::Catchingup)).empty());  // still a standby

    auto promoted = observed(NodeState::WaitPrimary);
    auto change = hook_events(h, &standby, promoted);
    REQUIRE(change.size() == 1);
    CHECK(change[0].hook == "on_role_change");
    CHECK(change[0].program == "/bin/role");
    CHECK(has_env(change[0], "AUTOFAILOVER_OLD_ROLE=standby"));
    CHECK(has_env(change[0], "AUTOFAILOVER_NEW_ROLE=primary"));
    CHECK(has_env(change[0], "AUTOFAILOVER_PRIMARY_HOST=10.0.0.1"));
    CHECK(has_env(change[0], "AUTOFAILOVER_PRIMARY_PORT=5432"));
    CHECK(has_env(change[0], "AUTOFAILOVER_NODE=node_1"));
    CHECK(hook_events(h, &promoted, observed(NodeState::Primary)).empty());  // wait_primary -> primary: same role

    auto fenced = observed(NodeState::DemoteTimeout, true);
    auto primary = observed(NodeState::Primary);
    auto f = hook_events(h, &primary, fenced);
    REQUIRE(f.size() == 2);
    CHECK(f[0].hook == "on_fence");
    CHECK(f[1].hook == "on_role_change");
    CHECK(has_env(f[1], "AUTOFAILOVER_NEW_ROLE=demoted"));
    CHECK(hook_events(h, &fenced, fenced).empty());

    KeeperConfig::Hooks none;
    CHECK(hook_events(none, nullptr, standby).empty());
    CHECK(hook_events(none, &standby, promoted).empty());
    CHECK(stop_hook_events(none, standby).empty());
}

TEST_CASE("pre_promote: the environment of the other hooks with the role it would take", "[hooks]") {
    KeeperConfig::Hooks h;
    h.pre_promote = "/bin/ask";
    auto e = pre_promote_event(h, observed(NodeState::ReportLsn));
    CHECK(e.hook == "pre_promote");
    CHECK(e.program == "/bin/ask");
    CHECK(has_env(e, "AUTOFAILOVER_HOOK=pre_promote"));
    CHECK(has_env(e, "AUTOFAILOVER_OLD_ROLE=standby"));
    CHECK(has_env(e, "AUTOFAILOVER_NEW_ROLE=primary"));
    CHECK_FALSE(has_env(e, "AUTOFAILOVER_NEW_ROLE=standby"));
    CHECK(has_env(e, "AUTOFAILOVER_NODE=node_1"));
    // Not queued like the others: it is no event of hook_events, and alone it starts no runner.
    CHECK(hook_events(h, nullptr, observed(NodeState::Secondary)).empty());
    CHECK_FALSE(h.any());
    // keeper.json round trip.
    KeeperConfig c;
    c.monitor_uri = "postgres://m/autofailover";
    c.pgdata = "/d";
    c.hostname = "h";
    c.replication_passfile = "/d.keeper/replication.pgpass";
    c.hooks.pre_promote = "/etc/autofailover/pre-promote";
    CHECK(config_from_json(config_to_json(c)).hooks.pre_promote == "/etc/autofailover/pre-promote");
}

TEST_CASE("hooks run on their own thread with their environment; a hung one is killed at its timeout",
          "[hooks]") {
    TempDir dir;
    const fs::path out = dir.path / "out";
    const std::string slow = script(dir.path, "slow.sh",
                                    "sleep 1; echo \"$AUTOFAILOVER_HOOK $AUTOFAILOVER_NEW_ROLE "
                                    "$AUTOFAILOVER_PRIMARY_PORT\" > " + out.string());
    const std::string hung = script(dir.path, "hung.sh", "sleep 30; echo late > " + (dir.path / "late").string());
    const auto started = std::chrono::steady_clock::now();
    {
        HookRunner runner("node_1", milliseconds(3000));
        KeeperConfig::Hooks h;
        h.on_role_change = slow;
        const NodeObservation before = observed(NodeState::Secondary);
        auto e = hook_events(h, &before, observed(NodeState::Primary));
        REQUIRE(e.size() == 1);
        runner.submit(e[0]);
        // submit() only queues: the loop is not held for the hook's second.
        CHECK(std::chrono::steady_clock::now() - started < milliseconds(500));
        REQUIRE(wait_for_file(out, milliseconds(10000)));
        CHECK(read(out) == "on_role_change primary 5432\n");
    }
    {
        HookRunner runner("node_1", milliseconds(300));
        runner.submit(HookEvent{"on_fence", hung, {}});
        std::this_thread::sleep_for(milliseconds(100));
        // The destructor runs what is queued, each bounded by the timeout: the hung hook is killed.
    }
    CHECK(std::chrono::steady_clock::now() - started < milliseconds(15000));
    std::this_thread::sleep_for(milliseconds(200));
    CHECK_FALSE(fs::exists(dir.path / "late"));
}
