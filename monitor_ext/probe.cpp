// Probe engine: PQconnectStartParams + PQconnectPoll state machines driven by
// socket readiness, at most kMaxConcurrentProbes sockets open at once (stays
// far below the process's file descriptor limit).
#include "monitor_ext/probe.h"

#include "monitor_ext/pg_include.h"

#include "libpq-fe.h"

namespace autofailover_ext {
namespace {

constexpr std::size_t kMaxConcurrentProbes = 256;

struct ProbeSlot {
    ProbeTarget* target;
    PGconn* conn;
    PostgresPollingStatusType poll;
    TimestampTz deadline;
    TimestampTz retry_at;
    int failed_attempts;
};

void finish_attempt(ProbeSlot* slot, bool up, const ProbeSettings& settings, TimestampTz now) {
    if (slot->conn != nullptr) {
        PQfinish(slot->conn);
        slot->conn = nullptr;
    }
    if (up) {
        slot->target->result = ProbeResult::Up;
        return;
    }
    slot->failed_attempts++;
    if (slot->failed_attempts > settings.max_retries) {
        slot->target->result = ProbeResult::Down;
        return;
    }
    slot->retry_at = TimestampTzPlusMilliseconds(now, settings.retry_delay_ms);
}

void start_attempt(ProbeSlot* slot, const ProbeSettings& settings, TimestampTz now) {
    char port[16];
    pg_snprintf(port, sizeof port, "%d", slot->target->port);
    const char* keywords[] = {"host", "port", "dbname", "user", "application_name", "sslmode", nullptr};
    // prefer: TLS with nodes created with --ssl-self-signed (their pg_hba lines are hostssl),
    // plain with the others at the cost of one SSLRequest round trip on the same socket.
    const char* values[] = {slot->target->host, port, "postgres", "autofailover_monitor", "autofailover_health_check",
                            "prefer", nullptr};
    slot->conn = PQconnectStartParams(keywords, values, 0);
    slot->poll = PGRES_POLLING_WRITING;
    slot->deadline = TimestampTzPlusMilliseconds(now, settings.timeout_ms);
    if (slot->conn == nullptr || PQstatus(slot->conn) == CONNECTION_BAD) finish_attempt(slot, false, settings, now);
}

void advance(ProbeSlot* slot, const ProbeSettings& settings, TimestampTz now) {
    slot->poll = PQconnectPoll(slot->conn);
    if (slot->poll == PGRES_POLLING_OK) {
        finish_attempt(slot, true, settings, now);
    } else if (slot->poll == PGRES_POLLING_FAILED) {
        const bool up = classify_failed_connection(PQerrorMessage(slot->conn)) == ProbeResult::Up;
        finish_attempt(slot, up, settings, now);
    }
}

bool contains(const char* haystack, const char* needle) { return strstr(haystack, needle) != nullptr; }

}  // namespace

ProbeResult classify_failed_connection(const char* message) {
    if (message == nullptr) return ProbeResult::Down;
    // The server answered but cannot serve yet (or any more): not a usable primary.
    if (contains(message, "starting up") || contains(message, "shutting down") ||
        contains(message, "not yet accepting connections") || contains(message, "in recovery mode"))
        return ProbeResult::Down;
    // Any other answer from the server (authentication, pg_hba, unknown database
    // or role, too many clients) proves its postmaster runs.
    if (contains(message, "FATAL") || contains(message, "fe_sendauth") || contains(message, "authentication") ||
        contains(message, "does not exist") || contains(message, "pg_hba.conf"))
        return ProbeResult::Up;
    return ProbeResult::Down;
}

void probe_all(ProbeTarget* targets, std::size_t count, const ProbeSettings& settings) {
    ProbeSlot* slots = static_cast<ProbeSlot*>(palloc0(sizeof(ProbeSlot) * kMaxConcurrentProbes));
    std::size_t next_target = 0;
    std::size_t active = 0;
    WaitEvent* events = static_cast<WaitEvent*>(palloc(sizeof(WaitEvent) * (kMaxConcurrentProbes + 1)));
    for (std::size_t i = 0; i < count; ++i) targets[i].result = ProbeResult::Pending;

    for (;;) {
        TimestampTz now = GetCurrentTimestamp();
        // Fill free slots with the next targets, start due attempts, expire late ones.
        for (std::size_t s = 0; s < kMaxConcurrentProbes; ++s) {
            ProbeSlot* slot = &slots[s];
            if (slot->target != nullptr && slot->target->result != ProbeResult::Pending) {
                slot->target = nullptr;
                active--;
            }
            if (slot->target == nullptr && next_target < count) {
                *slot = ProbeSlot{&targets[next_target++], nullptr, PGRES_POLLING_WRITING, 0, now, 0};
                active++;
            }
            if (slot->target == nullptr) continue;
            if (slot->conn == nullptr && now >= slot->retry_at) start_attempt(slot, settings, now);
            if (slot->conn != nullptr && now >= slot->deadline) finish_attempt(slot, false, settings, now);
            if (slot->target->result != ProbeResult::Pending) {
                slot->target = nullptr;
                active--;
            }
        }
        if (active == 0 && next_target >= count) break;

        WaitEventSet* set = CreateWaitEventSet(CurrentMemoryContext, static_cast<int>(active) + 2);
        AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, nullptr);
        AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, nullptr, nullptr);
        TimestampTz wake_at = TimestampTzPlusMilliseconds(now, settings.timeout_ms);
        int sockets = 0;
        for (std::size_t s = 0; s < kMaxConcurrentProbes; ++s) {
            ProbeSlot* slot = &slots[s];
            if (slot->target == nullptr) continue;
            if (slot->conn == nullptr) {
                if (slot->retry_at < wake_at) wake_at = slot->retry_at;
                continue;
            }
            if (slot->deadline < wake_at) wake_at = slot->deadline;
            const uint32 wanted = slot->poll == PGRES_POLLING_READING ? WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE;
            AddWaitEventToSet(set, wanted, PQsocket(slot->conn), nullptr, slot);
            sockets++;
        }
        long timeout_ms = TimestampDifferenceMilliseconds(now, wake_at);
        const int ready = WaitEventSetWait(set, timeout_ms < 1 ? 1 : timeout_ms, events, sockets + 2, PG_WAIT_EXTENSION);
        FreeWaitEventSet(set);
        now = GetCurrentTimestamp();
        for (int e = 0; e < ready; ++e) {
            if (events[e].events & WL_LATCH_SET) {
                ResetLatch(MyLatch);
                // SIGTERM exits here; open probe sockets close with the process.
                CHECK_FOR_INTERRUPTS();
                continue;
            }
            ProbeSlot* slot = static_cast<ProbeSlot*>(events[e].user_data);
            if (slot != nullptr && slot->conn != nullptr) advance(slot, settings, now);
        }
    }
    pfree(events);
    pfree(slots);
}

}  // namespace autofailover_ext
