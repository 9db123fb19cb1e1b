// The edge actions: one function per KeeperAction (libautofailover/keeper_transitions.h).
// The table decides which one runs; these only carry it out against the local Postgres.
//
// Contract, for every action:
//  - Idempotent: running it again after it succeeded changes nothing more (settings are
//    set, not toggled; roles and slots are created when missing; stop/promote are no-ops
//    once done).
//  - Safe to retry from any point: it throws on failure, the loop logs it and runs the same
//    action again next period, and a keeper killed half-way runs it again after its
//    restart. So an action first looks at what is there (data directory, postmaster,
//    pg_is_in_recovery(), state.json) instead of assuming where a previous try stopped, and
//    every step that leaves something half-done on disk (a base backup, a data directory
//    kept for the DBA) writes it aside and renames it into place (base_backup.h).
//  - It never discards a data directory that may hold writes nobody else has: that one is
//    kept as <pgdata>.diverged-<time> (rewind_or_reinit, rebuild_unfollowable_standby).
// Where it does not hold, said here:
//  - InitPrimary: initdb writes PGDATA in place (PGDATA may be a mount point, which a rename
//    cannot replace). initdb removes what it wrote when it fails or is signalled, and it runs
//    to its end when the keeper dies; only a machine crash during initdb leaves a partial
//    cluster, which the retry finds (PG_VERSION) and cannot start: the operator then empties
//    PGDATA (docs/keeper.md).
//  - RewindOrReinit: a pg_rewind cut short leaves PGDATA half-rewound. The retry runs
//    pg_rewind again, which copies the same changed blocks again; if it then fails, the
//    directory is kept as .diverged-<time> and the node rejoins from a fresh base backup.
//  - FastForward: a keeper killed while the standby streams from the upstream standby
//    leaves primary_conninfo pointing there until the action (or FollowPrimary) runs again.
#pragma once

#include "keeper/action_context.h"
#include "libautofailover/keeper_transitions.h"

#include <string>

namespace autofailover::keeper {

void run_action(KeeperAction action, ActionContext& ctx);

// A running standby whose server log shows it can never follow the primary with this
// data directory (`reason`, from unfollowable_reason(): its WAL is gone, e.g. its slot
// exceeded max_slot_wal_keep_size while it was away; or its history diverged):
// re-initialized from a fresh base backup. A diverged directory is kept for the DBA.
// Run by the loop's supervision, under the same contract.
void rebuild_unfollowable_standby(ActionContext& ctx, const std::string& reason);

// Slots: keeper/replication_slots.h. Standby setup and pg_hba access: keeper/standby_setup.h.
// Tool command lines: keeper/postgres_tools.h. Fresh copies of the primary: keeper/base_backup.h.
// parse_synchronous_standby_names lives next to its generator in libautofailover/replication_names.h.

}  // namespace autofailover::keeper
