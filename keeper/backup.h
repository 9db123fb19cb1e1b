// pgBackRest integration (keeper.json "backup", docs/backups.md): the settings the
// keeper writes into autofailover.conf, the command lines it and autoctl run, and
// what `pgbackrest info --output=json` says. No shell anywhere but archive_command
// and restore_command, which Postgres itself runs through /bin/sh: every value in
// them is validated (backup_setting_problem) and quoted here.
#pragma once

#include "keeper/keeper_config.h"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace autofailover::keeper {

// `text` as one /bin/sh word inside a Postgres archive_command/restore_command:
// single-quoted ('\'' for a quote) and every % doubled (Postgres expands %p, %f, %%).
std::string shell_word_for_archive_command(const std::string& text);

// archive_command / restore_command of this node (its own pg1-path).
std::string archive_command(const KeeperConfig& config);
std::string restore_command(const KeeperConfig& config);
// Lines for autofailover.conf: archive_mode, archive_command, restore_command; "" when off.
std::string backup_conf_text(const KeeperConfig& config);

// Before a standby is promoted: every complete WAL segment it received is marked for the
// archiver again (archive_status/<segment>.done renamed to .ready), so that the new
// primary archives what the old one may not have pushed before it died; a standby with
// archive_mode=on marks received segments as archived. pgBackRest answers a push of a
// segment it holds with a warning and success. Returns how many were marked.
int requeue_received_segments(const std::string& pgdata);

// A walreceiver gives a segment its status file only when the next one starts, so when what a standby
// received ends exactly at a segment boundary, the last complete segment has none; Postgres does not
// archive it at promotion either (it archives only a partial last segment). Marks that segment .ready
// (the file of the highest timeline holding it) when it is there without a status file; returns whether
// it did. received_end: pg_last_wal_receive_lsn(); wal_segment_size in bytes.
bool queue_unclosed_segment(const std::string& pgdata, std::uint64_t received_end, std::uint64_t wal_segment_size);

// argv of a pgBackRest command: <command> --config=.. --stanza=.. <options...> <name>.
std::vector<std::string> pgbackrest_argv(const KeeperConfig::Backup& backup, const std::string& name,
                                         const std::vector<std::string>& options = {});
// --pg<index>-path / -port / -socket-path of a node from its keeper.json.
std::vector<std::string> pgbackrest_node_options(const KeeperConfig& node, int index);

struct BackupSet {
    std::string label;
    std::string type;  // full, diff, incr
    std::int64_t start_epoch = 0;
    std::int64_t stop_epoch = 0;
    std::uint64_t size = 0;       // database size
    std::uint64_t repo_size = 0;  // stored in the repository
    std::string wal_start;
    std::string wal_stop;
    std::string lsn_start;
    std::string lsn_stop;
    int db_id = 0;
    bool error = false;
};

struct ArchiveRange {
    int db_id = 0;
    std::string min;
    std::string max;
};

struct BackupInfo {
    std::string stanza;
    int status_code = -1;  // 0 ok, 1 missing stanza path, 2 no valid backups, ...
    std::string status_message;
    std::vector<BackupSet> backups;  // oldest first
    std::vector<ArchiveRange> archives;
    // db id → system identifier (decimal) of the stanza's database histories.
    std::vector<std::pair<int, std::string>> databases;
};

// Parses pgbackrest info --output=json (an array of stanzas) for `stanza`. Throws
// std::runtime_error on malformed input.
BackupInfo parse_backup_info(const std::string& json_text, const std::string& stanza);

// The newest backup without error taken from the system `system_identifier`, if any.
std::optional<BackupSet> latest_backup_of(const BackupInfo& info, const std::string& system_identifier);

// Runs `pgbackrest info --output=json` for the node's stanza. Throws std::runtime_error
// with pgBackRest's last output lines when it fails.
BackupInfo read_backup_info(const KeeperConfig& config, std::chrono::milliseconds timeout);

}  // namespace autofailover::keeper
