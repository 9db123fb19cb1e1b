// How this node is set up as a standby, and kept one: the pg_hba.conf lines for
// replication, primary_conninfo / primary_slot_name, standby.signal, and the start
// of a standby that then must stream from its primary.
#pragma once

#include "keeper/action_context.h"
#include "keeper/rejoin.h"

#include <optional>
#include <string>

namespace autofailover::keeper {

// Settings and pg_hba lines for this node and the group it belongs to; reloads when they changed.
void ensure_replication_access(ActionContext& ctx, bool reload_if_changed);

// Standby setup while stopped: standby.signal + primary_conninfo/slot in postgresql.auto.conf.
void write_standby_setup(ActionContext& ctx, const std::string& host, int port, bool with_slot);

// On a running standby: points primary_conninfo / primary_slot_name (ALTER SYSTEM) at
// host:port through this node's slot and reloads; PG 15 restarts the walreceiver then.
void point_standby_at(ActionContext& ctx, const std::string& host, int port);

// On a running standby that should stream from the primary: re-point primary_conninfo /
// primary_slot_name when someone or something changed them. Returns true when it did.
bool ensure_following_primary(ActionContext& ctx);

// pg_stat_wal_receiver of the local Postgres; nullopt without a walreceiver.
std::optional<WalReceiverView> wal_receiver(LocalPostgres& pg);

// A stopped data directory started as a standby of host:port; waits up to
// standby_stream_wait for the walreceiver to stream (then reports anyway).
void start_as_standby_of(ActionContext& ctx, const std::string& host, int port);

// Starts a rewound data directory as a standby of host:port and waits until it
// streams. Returns why it cannot follow that primary (it is then stopped), or
// nullopt once it streams. Throws, leaving the decision to a later try, when the
// cause may be passing: the primary does not answer, or Postgres itself fails to start.
std::optional<std::string> start_rewound_standby(ActionContext& ctx, const std::string& host, int port);

// The primary's flush LSN, or nullopt when it does not answer.
std::optional<Lsn> primary_flush_lsn(ActionContext& ctx, const std::string& host, int port);

}  // namespace autofailover::keeper
