// autoctl config get | set | check (the node's keeper.json) and autoctl reload
// (SIGHUP to its keeper). Values are checked by the keeper's own loader
// (config_from_json: types, ranges, names, hosts, paths, client access) before
// anything is written; the file is replaced atomically (temp + fsync + rename, 0600).
#include "autoctl/command_tree.h"
#include "autoctl/exit_codes.h"
#include "keeper/keeper.h"
#include "keeper/keeper_config.h"
#include "keeper/keeper_loop.h"
#include "keeper/pid_file.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <set>
#include <sys/stat.h>

namespace autoctl {

namespace {

namespace k = autofailover::keeper;
namespace fs = std::filesystem;
using Json = nlohmann::json;

struct ConfigOptions {
    std::string pgdata;
    std::string state_dir;
    std::string key;
    std::string value;
};

// Keys that identify the node to the monitor or to Postgres: changing them in
// keeper.json alone would make the keeper disagree with both.
const std::set<std::string> kFixedKeys{"name",     "formation", "hostname",      "port",
                                       "pgdata",   "monitor_user", "monitor_passfile"};

void add_node_options(CLI::App* cmd, ConfigOptions& o) {
    cmd->add_option("--pgdata", o.pgdata, "Data directory of the local node")->required()->envname("PGDATA");
    cmd->add_option("--state-dir", o.state_dir, "Keeper state directory (default: <pgdata>.keeper)");
}

std::string state_dir_of(const ConfigOptions& o) {
    const auto absolute = [](const std::string& p) {
        std::string s = fs::absolute(p).lexically_normal().string();
        while (s.size() > 1 && s.back() == '/') s.pop_back();
        return s;
    };
    return o.state_dir.empty() ? autofailover::support::default_state_dir(absolute(o.pgdata)) : absolute(o.state_dir);
}

// keeper.json as the keeper would load it: every check of config_from_json.
k::KeeperConfig load_checked(const std::string& dir) {
    try {
        return k::load_config(dir);
    } catch (const k::KeeperError& e) {
        throw CliError(ExitCode::BadArguments, e.what());
    }
}

std::vector<std::string> split_key(const std::string& key) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (;;) {
        const auto dot = key.find('.', start);
        parts.push_back(key.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
        if (dot == std::string::npos) break;
        start = dot + 1;
    }
    return parts;
}

// The key's place in the (normalised) document; refuses keys the keeper does not know.
Json& at_key(Json& doc, const std::string& key) {
    Json* node = &doc;
    for (const auto& part : split_key(key)) {
        if (!node->is_object() || !node->contains(part))
            throw CliError(ExitCode::BadArguments,
                           fmt::format("keeper.json has no key \"{}\" (autoctl config get --pgdata DIR lists them; "
                                       "nested keys use dots, e.g. timeouts.poll_period_ms)",
                                       key));
        node = &(*node)[part];
    }
    return *node;
}

std::string show_value(const Json& value) { return value.is_string() ? value.get<std::string>() : value.dump(); }

// VALUE in the type the key already has: strings as given, numbers and booleans
// parsed strictly, lists as a JSON array or a comma-separated list.
Json parse_value(const Json& current, const std::string& key, const std::string& text) {
    if (current.is_string()) return text;
    if (current.is_boolean()) {
        if (text == "true" || text == "on") return true;
        if (text == "false" || text == "off") return false;
        throw CliError(ExitCode::BadArguments, fmt::format("{}: true or false expected, not \"{}\"", key, text));
    }
    if (current.is_number_integer()) {
        std::size_t used = 0;
        long long n = 0;
        try {
            n = std::stoll(text, &used, 10);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used == 0 || used != text.size())
            throw CliError(ExitCode::BadArguments, fmt::format("{}: an integer expected, not \"{}\"", key, text));
        return n;
    }
    if (current.is_array()) {
        Json list = Json::parse(text, nullptr, false);
        if (!list.is_discarded() && list.is_array()) return list;
        list = Json::array();
        std::size_t start = 0;
        while (!text.empty() && start <= text.size()) {
            const auto comma = text.find(',', start);
            list.push_back(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
            if (comma == std::string::npos) break;
            start = comma + 1;
        }
        return list;
    }
    throw CliError(ExitCode::BadArguments, fmt::format("{} is a group of settings: set its keys one by one", key));
}

void config_get(const ConfigOptions& o) {
    Json doc = Json::parse(k::config_to_json(load_checked(state_dir_of(o))));
    if (o.key.empty()) {
        std::cout << doc.dump(2) << "\n";
        return;
    }
    std::cout << show_value(at_key(doc, o.key)) << "\n";
}

void config_set(const ConfigOptions& o) {
    const std::string dir = state_dir_of(o);
    Json doc = Json::parse(k::config_to_json(load_checked(dir)));
    Json& slot = at_key(doc, o.key);
    if (kFixedKeys.count(o.key) > 0)
        throw CliError(ExitCode::BadArguments,
                       fmt::format("{} identifies this node to the monitor and to Postgres and is not changed by "
                                   "editing keeper.json (drop and create the node instead)",
                                   o.key));
    slot = parse_value(slot, o.key, o.value);
    k::KeeperConfig checked;
    try {
        checked = k::config_from_json(doc.dump());
    } catch (const std::exception& e) {
        throw CliError(ExitCode::BadArguments, fmt::format("{} = {} refused: {}", o.key, o.value, e.what()));
    }
    k::save_config(dir, checked);
    const auto pid = k::live_pid_in(k::pid_path(dir));
    std::cout << fmt::format("{} = {} written to {}\n", o.key, show_value(at_key(doc, o.key)), k::config_path(dir));
    if (pid)
        std::cout << fmt::format("The keeper (pid {}) reads it at its next start, or now with: autoctl reload "
                                 "--pgdata {}\n",
                                 *pid, o.pgdata);
}

// Files keeper.json names that hold secrets must be the keeper's alone.
std::vector<std::string> private_file_problems(const k::KeeperConfig& c) {
    std::vector<std::string> problems;
    for (const std::string& path : {c.monitor_passfile, c.replication_passfile, c.ssl_key_file}) {
        if (path.empty()) continue;
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0)
            problems.push_back(path + " is missing");
        else if ((st.st_mode & 077) != 0)
            problems.push_back(fmt::format("{} has mode {:04o}: others may read it (chmod 600)", path,
                                           st.st_mode & 07777));
    }
    if (!fs::is_directory(c.pgdata)) problems.push_back("pgdata " + c.pgdata + " is not a directory");
    if (!fs::exists(c.pg_bindir + "/pg_ctl")) problems.push_back("pg_bindir " + c.pg_bindir + " has no pg_ctl");
    return problems;
}

void config_check(const ConfigOptions& o) {
    const std::string dir = state_dir_of(o);
    const k::KeeperConfig config = load_checked(dir);
    const auto problems = private_file_problems(config);
    if (!problems.empty()) {
        std::string message = k::config_path(dir) + " is valid, but:";
        for (const auto& p : problems) message += "\n  " + p;
        throw CliError(ExitCode::BadArguments, message);
    }
    std::cout << k::config_path(dir) << " is valid\n";
}

void reload(const ConfigOptions& o) {
    const std::string dir = state_dir_of(o);
    // The keeper keeps its old settings when the new file does not load: say so now.
    load_checked(dir);
    const auto pid = k::live_pid_in(k::pid_path(dir));
    if (!pid)
        throw CliError(ExitCode::LocalPostgresError,
                       fmt::format("no keeper runs for {} (no live pid in {})", o.pgdata, k::pid_path(dir)));
    if (::kill(static_cast<pid_t>(*pid), SIGHUP) != 0)
        throw CliError(ExitCode::LocalPostgresError,
                       fmt::format("cannot signal the keeper (pid {}): {}", *pid, std::strerror(errno)));
    std::cout << fmt::format("sent SIGHUP to the keeper (pid {}): it reloads keeper.json within a poll period\n",
                             *pid);
}

}  // namespace

void add_config_commands(CLI::App& app) {
    CLI::App* config = app.add_subcommand("config", "Read, change and check this node's keeper.json");
    config->require_subcommand(1);

    auto get = std::make_shared<ConfigOptions>();
    CLI::App* get_cmd = config->add_subcommand("get", "Print keeper.json, or the value of one key (dots for nested keys)");
    add_node_options(get_cmd, *get);
    get_cmd->add_option("key", get->key, "e.g. http_port, timeouts.poll_period_ms");
    get_cmd->callback([get] { config_get(*get); });

    auto set = std::make_shared<ConfigOptions>();
    CLI::App* set_cmd = config->add_subcommand(
        "set", "Change one key of keeper.json, checked as the keeper checks it, written atomically (0600)");
    add_node_options(set_cmd, *set);
    set_cmd->add_option("key", set->key, "e.g. timeouts.poll_period_ms")->required();
    set_cmd->add_option("value", set->value, "New value (lists: JSON array or comma-separated)")->required();
    set_cmd->callback([set] { config_set(*set); });

    auto check = std::make_shared<ConfigOptions>();
    CLI::App* check_cmd = config->add_subcommand(
        "check", "Check keeper.json as the keeper loads it, and the files it names (modes, pgdata, pg_ctl)");
    add_node_options(check_cmd, *check);
    check_cmd->callback([check] { config_check(*check); });

    auto rl = std::make_shared<ConfigOptions>();
    CLI::App* reload_cmd =
        app.add_subcommand("reload", "Make the running keeper reload keeper.json (SIGHUP through keeper.pid)");
    add_node_options(reload_cmd, *rl);
    reload_cmd->callback([rl] { reload(*rl); });
}

}  // namespace autoctl
