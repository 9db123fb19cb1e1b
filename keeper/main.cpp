// autofailover-keeper --pgdata DIR [--state-dir DIR]: the keeper loop in the foreground.
#include "keeper/keeper.h"

#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
    CLI::App app{"autofailover keeper: runs the node's state machine against the monitor"};
    std::string pgdata;
    std::string state_dir;
    app.add_option("--pgdata", pgdata, "data directory of the local Postgres")->required();
    app.add_option("--state-dir", state_dir, "keeper.json/state.json directory (default <pgdata>.keeper)");
    CLI11_PARSE(app, argc, argv);
    return autofailover::keeper::run_keeper(pgdata, state_dir);
}
