// Probe engine: PQconnectStartParams + PQconnectPoll state machines driven by
// socket readiness, at most kMaxConcurrentProbes sockets open at once (stays
// far below the process's file descriptor limit).
//
// Each probe has its own deadlines (attempt timeout, retry delay) and is not
// tied to a round: a probe still running when its round ends goes on and
// reports in a later call, so a node that accepts TCP and never answers only
// delays its own result.
//
// Host names are resolved with getaddrinfo_a, never inside libpq (whose
// getaddrinfo blocks the worker for as long as DNS takes); libpq gets the
// addresses as hostaddr. glibc runs each lookup in a helper thread of its own,
// with every signal blocked, that only runs resolver code: no PostgreSQL code
// ever runs outside the worker's thread.
//
// Classification never reads message text (a host name appears in libpq's
// messages). The structured signs that the server answered in the PostgreSQL
// protocol, all documented in docs/security.md, are:
// - the connection succeeded (PGRES_POLLING_OK);
// - an error after authentication: libpq turns it into a PGresult that passes
//   through PQgetResult inside PQconnectPoll, where a PGEVT_RESULTCREATE event
//   procedure reads PG_DIAG_SQLSTATE;
// - PQconnectionNeedsPassword(): the server sent a password request;
// - before authentication libpq 15 keeps the ErrorResponse's SQLSTATE to
//   itself, so the first message of the server's reply to the startup packet is
//   read with recv(MSG_PEEK) before libpq consumes it: an Authentication
//   message, or an ErrorResponse whose 'C' (SQLSTATE) field is taken. This is
//   only possible in clear text; with sslmode=prefer, libpq retries an error
//   received under TLS in clear text, except "cannot connect now" (57P03),
//   which is Down anyway.
#include "monitor_ext/probe.h"

#include "monitor_ext/pg_include.h"

#include "libpq-events.h"
#include "libpq-fe.h"

#include <netdb.h>
#include <sys/socket.h>

#include <cstring>

namespace autofailover_ext {

namespace {

constexpr std::size_t kMaxConcurrentProbes = 256;
// Names being resolved at once; a lookup outlives an attempt that gave up on it.
constexpr std::size_t kMaxResolutions = 2 * kMaxConcurrentProbes;
// Addresses of one name handed to libpq, which tries them in turn within the attempt.
constexpr int kMaxAddresses = 16;
// getaddrinfo_a offers no descriptor to wait on: pending lookups are polled this often.
constexpr long kResolvePollMs = 10;
// Bytes of the server's first reply looked at: type, length, fields up to the SQLSTATE.
constexpr std::size_t kPeekBytes = 256;

struct Resolution {
    bool in_use;
    int users;  // attempts waiting for it
    char* host;
    struct addrinfo hints;
    struct gaicb request;  // written by glibc's helper thread until gai_error() != EAI_INPROGRESS
};

struct ConnectionId {
    sockaddr_storage local;
    sockaddr_storage peer;
};

struct ProbeSlot {
    bool in_use;
    std::int64_t node_id;
    char* host;
    int port;
    ProbeTarget* target;  // in the array of the last probe_round
    bool this_round;      // started by the current probe_round
    Resolution* resolution;
    PGconn* conn;
    PostgresPollingStatusType poll;
    TimestampTz deadline;
    TimestampTz retry_at;
    int failed_attempts;
    ProbeResult result;
    TimestampTz started_at;   // claim_slot: for the probe's duration (autofailover.metrics())
    TimestampTz finished_at;  // when `result` was set
    FailedConnection evidence;  // of the current attempt
    bool peeked;
    ConnectionId peeked_id;  // the TCP connection whose first reply was read
};

}  // namespace

struct ProbeEngine {
    MemoryContext memory;
    ProbeSlot slots[kMaxConcurrentProbes];
    Resolution resolutions[kMaxResolutions];
    // The last probe_round's targets (its array lives until the next round).
    ProbeTarget* targets;
    std::size_t count;
    bool* running;            // running[i]: targets[i] has a probe from an earlier round
    std::size_t next_target;  // targets before it have a probe or a result
};

namespace {

bool valid_sqlstate(const char* state, std::size_t length) {
    if (state == nullptr || length != 5) return false;
    for (std::size_t i = 0; i < 5; ++i)
        if (!((state[i] >= '0' && state[i] <= '9') || (state[i] >= 'A' && state[i] <= 'Z'))) return false;
    return true;
}

// libpq event procedure: an error after authentication becomes a PGresult that
// PQconnectPoll fetches with PQgetResult, which fires PGEVT_RESULTCREATE.
int remember_server_error(PGEventId event, void* info, void* pass_through) {
    if (event != PGEVT_RESULTCREATE) return 1;
    const PGresult* result = static_cast<PGEventResultCreate*>(info)->result;
    const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    if (PQresultStatus(result) == PGRES_FATAL_ERROR && state != nullptr && valid_sqlstate(state, strlen(state))) {
        FailedConnection* evidence = &static_cast<ProbeSlot*>(pass_through)->evidence;
        memcpy(evidence->sqlstate, state, 5);
        evidence->sqlstate[5] = '\0';
    }
    return 1;
}

std::uint32_t read_uint32(const unsigned char* bytes) {
    return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) | (std::uint32_t{bytes[2]} << 8) |
           std::uint32_t{bytes[3]};
}

// The first protocol message of the server's reply: 'R' Authentication, or 'E'
// ErrorResponse = int32 length, then (field code, NUL-terminated value)..., 0.
// Length bounds as libpq's own sanity checks of these two messages.
void read_first_reply(const unsigned char* bytes, std::size_t size, FailedConnection* evidence) {
    if (size < 5) return;
    const std::uint32_t length = read_uint32(bytes + 1);
    if (bytes[0] == 'R' && length >= 8 && length <= 2000) evidence->auth_requested = true;
    if (bytes[0] != 'E' || length < 8 || length > 30000) return;
    const std::size_t end = size < 1 + std::size_t{length} ? size : 1 + std::size_t{length};
    std::size_t at = 5;
    while (at < end && bytes[at] != '\0') {
        const unsigned char code = bytes[at++];
        const std::size_t start = at;
        while (at < end && bytes[at] != '\0') ++at;
        if (at >= end) return;  // field cut off by the peek: no verdict from it
        const char* value = reinterpret_cast<const char*>(bytes + start);
        if (code == 'C' && valid_sqlstate(value, at - start)) {
            memcpy(evidence->sqlstate, value, 5);
            evidence->sqlstate[5] = '\0';
            return;
        }
        ++at;
    }
}

// Called before libpq reads a clear-text socket that waits for the reply to the
// startup packet: the first such read of a TCP connection sees its reply from
// the first byte (libpq has read nothing of it yet).
void peek_first_reply(ProbeSlot* slot) {
    const int sock = PQsocket(slot->conn);
    if (sock < 0) return;
    ConnectionId id;
    memset(&id, 0, sizeof id);
    socklen_t length = sizeof id.local;
    if (getsockname(sock, reinterpret_cast<sockaddr*>(&id.local), &length) != 0) return;
    length = sizeof id.peer;
    if (getpeername(sock, reinterpret_cast<sockaddr*>(&id.peer), &length) != 0) return;
    if (slot->peeked && memcmp(&id, &slot->peeked_id, sizeof id) == 0) return;
    slot->peeked = true;
    slot->peeked_id = id;
    slot->evidence.sqlstate[0] = '\0';
    slot->evidence.auth_requested = false;
    unsigned char bytes[kPeekBytes];
    const ssize_t size = recv(sock, bytes, sizeof bytes, MSG_PEEK | MSG_DONTWAIT);
    if (size > 0) read_first_reply(bytes, static_cast<std::size_t>(size), &slot->evidence);
}

bool is_numeric_host(const char* host) {
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_flags = AI_NUMERICHOST;  // never queries anything
    hints.ai_socktype = SOCK_STREAM;
    struct addrinfo* result = nullptr;
    if (getaddrinfo(host, nullptr, &hints, &result) != 0) return false;
    freeaddrinfo(result);
    return true;
}

Resolution* attach_resolution(ProbeEngine* engine, const char* host) {
    Resolution* free_entry = nullptr;
    for (Resolution& r : engine->resolutions) {
        if (r.in_use && strcmp(r.host, host) == 0) {
            // One lookup per name at a time, however many attempts wait for it.
            r.users++;
            return &r;
        }
        if (!r.in_use && free_entry == nullptr) free_entry = &r;
    }
    if (free_entry == nullptr) return nullptr;
    Resolution* r = free_entry;
    memset(r, 0, sizeof *r);
    r->host = MemoryContextStrdup(engine->memory, host);
    r->hints.ai_family = AF_UNSPEC;  // as libpq asks
    r->hints.ai_socktype = SOCK_STREAM;
    r->request.ar_name = r->host;
    r->request.ar_request = &r->hints;
    struct gaicb* list[1] = {&r->request};
    if (getaddrinfo_a(GAI_NOWAIT, list, 1, nullptr) != 0) {
        pfree(r->host);
        r->host = nullptr;
        return nullptr;
    }
    r->in_use = true;
    r->users = 1;
    return r;
}

void detach_resolution(ProbeSlot* slot) {
    Resolution* r = slot->resolution;
    if (r == nullptr) return;
    slot->resolution = nullptr;
    // Nobody waits any more: drop it if glibc has not started it (a started one is reaped when done).
    if (--r->users == 0 && gai_error(&r->request) == EAI_INPROGRESS) gai_cancel(&r->request);
}

void reap_resolutions(ProbeEngine* engine) {
    for (Resolution& r : engine->resolutions) {
        if (!r.in_use || r.users > 0 || gai_error(&r.request) == EAI_INPROGRESS) continue;
        if (r.request.ar_result != nullptr) freeaddrinfo(r.request.ar_result);
        pfree(r.host);
        memset(&r, 0, sizeof r);
    }
}

void finish_attempt(ProbeSlot* slot, bool up, const ProbeSettings& settings, TimestampTz now) {
    if (slot->conn != nullptr) {
        PQfinish(slot->conn);
        slot->conn = nullptr;
    }
    detach_resolution(slot);
    if (up) {
        slot->result = ProbeResult::Up;
        slot->finished_at = now;
        return;
    }
    slot->failed_attempts++;
    if (slot->failed_attempts > settings.max_retries) {
        slot->result = ProbeResult::Down;
        slot->finished_at = now;
        elog(DEBUG1, "autofailover health check: node %lld (%s:%d) is down after %d attempts",
             static_cast<long long>(slot->node_id), slot->host, slot->port, slot->failed_attempts);
        return;
    }
    slot->retry_at = TimestampTzPlusMilliseconds(now, settings.retry_delay_ms);
}

// `addresses` null: the host is numeric and libpq needs no lookup.
void connect_to(ProbeSlot* slot, const struct addrinfo* addresses, const ProbeSettings& settings, TimestampTz now) {
    char port[16];
    pg_snprintf(port, sizeof port, "%d", slot->port);
    StringInfoData hosts;
    StringInfoData hostaddrs;
    initStringInfo(&hosts);
    initStringInfo(&hostaddrs);
    int count = 0;
    for (const struct addrinfo* a = addresses; a != nullptr && count < kMaxAddresses; a = a->ai_next) {
        char numeric[NI_MAXHOST];
        if (getnameinfo(a->ai_addr, a->ai_addrlen, numeric, sizeof numeric, nullptr, 0, NI_NUMERICHOST) != 0)
            continue;
        // libpq wants as many host names as hostaddr values; the name only labels them here.
        appendStringInfo(&hosts, "%s%s", count > 0 ? "," : "", slot->host);
        appendStringInfo(&hostaddrs, "%s%s", count > 0 ? "," : "", numeric);
        count++;
    }
    if (addresses != nullptr && count == 0) {
        pfree(hosts.data);
        pfree(hostaddrs.data);
        finish_attempt(slot, false, settings, now);
        return;
    }
    // prefer: TLS with nodes created with --ssl-self-signed (their pg_hba lines are hostssl),
    // plain with the others at the cost of one SSLRequest round trip on the same socket.
    // gssencmode=disable: no Kerberos credential cache lookup per probe, and a reply we can read.
    const char* keywords[] = {"host",    "port",       "dbname",   "user", "application_name",
                              "sslmode", "gssencmode", "hostaddr", nullptr};
    const char* values[] = {count > 0 ? hosts.data : slot->host,
                            port,
                            "postgres",
                            "autofailover_monitor",
                            "autofailover_health_check",
                            "prefer",
                            "disable",
                            count > 0 ? hostaddrs.data : nullptr,
                            nullptr};
    slot->conn = PQconnectStartParams(keywords, values, 0);
    pfree(hosts.data);
    pfree(hostaddrs.data);
    slot->poll = PGRES_POLLING_WRITING;
    if (slot->conn != nullptr) PQregisterEventProc(slot->conn, remember_server_error, "autofailover probe", slot);
    if (slot->conn == nullptr || PQstatus(slot->conn) == CONNECTION_BAD) finish_attempt(slot, false, settings, now);
}

void start_attempt(ProbeEngine* engine, ProbeSlot* slot, const ProbeSettings& settings, TimestampTz now) {
    memset(&slot->evidence, 0, sizeof slot->evidence);
    slot->peeked = false;
    // The attempt's deadline covers the name lookup too.
    slot->deadline = TimestampTzPlusMilliseconds(now, settings.timeout_ms);
    if (is_numeric_host(slot->host)) {
        connect_to(slot, nullptr, settings, now);
        return;
    }
    slot->resolution = attach_resolution(engine, slot->host);
    if (slot->resolution == nullptr) {
        elog(DEBUG1, "autofailover health check: node %lld (%s:%d): no room to resolve its name",
             static_cast<long long>(slot->node_id), slot->host, slot->port);
        finish_attempt(slot, false, settings, now);
    }
}

void service_resolution(ProbeSlot* slot, const ProbeSettings& settings, TimestampTz now) {
    Resolution* r = slot->resolution;
    const int rc = gai_error(&r->request);
    if (rc == EAI_INPROGRESS) return;
    if (rc != 0) {
        elog(DEBUG1, "autofailover health check: node %lld (%s:%d): %s", static_cast<long long>(slot->node_id),
             slot->host, slot->port, gai_strerror(rc));
        finish_attempt(slot, false, settings, now);
        return;
    }
    connect_to(slot, r->request.ar_result, settings, now);
    detach_resolution(slot);
}

void advance(ProbeSlot* slot, const ProbeSettings& settings, TimestampTz now) {
    if (PQstatus(slot->conn) == CONNECTION_AWAITING_RESPONSE && !PQsslInUse(slot->conn)) peek_first_reply(slot);
    slot->poll = PQconnectPoll(slot->conn);
    if (slot->poll == PGRES_POLLING_OK) {
        finish_attempt(slot, true, settings, now);
    } else if (slot->poll == PGRES_POLLING_FAILED) {
        slot->evidence.needs_password = PQconnectionNeedsPassword(slot->conn) != 0;
        const bool up = classify_failed_connection(slot->evidence) == ProbeResult::Up;
        elog(DEBUG2, "autofailover health check: node %lld (%s:%d) attempt failed: sqlstate \"%s\"%s%s, %s",
             static_cast<long long>(slot->node_id), slot->host, slot->port, slot->evidence.sqlstate,
             slot->evidence.auth_requested ? ", authentication requested" : "",
             slot->evidence.needs_password ? ", password requested" : "", up ? "up" : "down");
        finish_attempt(slot, up, settings, now);
    }
}

void release_slot(ProbeSlot* slot) {
    if (slot->conn != nullptr) PQfinish(slot->conn);
    slot->conn = nullptr;
    detach_resolution(slot);
    if (slot->host != nullptr) pfree(slot->host);
    memset(slot, 0, sizeof *slot);
}

void claim_slot(ProbeEngine* engine, ProbeSlot* slot, ProbeTarget* target, TimestampTz now) {
    memset(slot, 0, sizeof *slot);
    slot->in_use = true;
    slot->node_id = target->node_id;
    slot->host = MemoryContextStrdup(engine->memory, target->host);
    slot->port = target->port;
    slot->target = target;
    slot->this_round = true;
    slot->poll = PGRES_POLLING_WRITING;
    slot->retry_at = now;
    slot->result = ProbeResult::Pending;
    slot->started_at = now;
}

// Hands a finished probe's result to its target and frees the slot.
bool deliver(ProbeSlot* slot) {
    if (!slot->in_use || slot->target == nullptr || slot->result == ProbeResult::Pending) return false;
    slot->target->result = slot->result;
    slot->target->duration_us = slot->finished_at - slot->started_at;
    release_slot(slot);
    return true;
}

// Starts due attempts, reads finished lookups, gives up late attempts.
void service(ProbeEngine* engine, ProbeSlot* slot, const ProbeSettings& settings, TimestampTz now) {
    if (slot->conn == nullptr && slot->resolution == nullptr && now >= slot->retry_at)
        start_attempt(engine, slot, settings, now);
    if (slot->resolution != nullptr) service_resolution(slot, settings, now);
    if ((slot->conn != nullptr || slot->resolution != nullptr) && now >= slot->deadline)
        finish_attempt(slot, false, settings, now);
}

void skip_started_targets(ProbeEngine* engine) {
    while (engine->next_target < engine->count && (engine->targets[engine->next_target].result != ProbeResult::Pending ||
                                                   engine->running[engine->next_target]))
        engine->next_target++;
}

enum class DriveMode { Round, Idle };

// Runs the state machines until `until`. Round: also starts probes of the
// round's targets as slots free up, and returns as soon as each probe of this
// round has a result. Idle: returns as soon as any probe delivered a result,
// or when the latch is set.
bool drive(ProbeEngine* engine, const ProbeSettings& settings, TimestampTz until, DriveMode mode) {
    WaitEvent* events = static_cast<WaitEvent*>(palloc(sizeof(WaitEvent) * (kMaxConcurrentProbes + 2)));
    bool delivered = false;
    for (;;) {
        TimestampTz now = GetCurrentTimestamp();
        bool round_pending = false;
        for (ProbeSlot& slot : engine->slots) {
            if (!slot.in_use && mode == DriveMode::Round) {
                skip_started_targets(engine);
                if (engine->next_target < engine->count)
                    claim_slot(engine, &slot, &engine->targets[engine->next_target++], now);
            }
            if (!slot.in_use) continue;
            if (slot.result == ProbeResult::Pending) service(engine, &slot, settings, now);
            const bool mine = slot.this_round;
            if (deliver(&slot))
                delivered = true;
            else if (mine)
                round_pending = true;
        }
        reap_resolutions(engine);
        if (mode == DriveMode::Round) {
            // Targets not started yet (all slots busy) count as pending.
            skip_started_targets(engine);
            if (!round_pending && engine->next_target >= engine->count) break;
        } else if (delivered) {
            break;
        }
        if (now >= until) break;
        if (mode == DriveMode::Round && engine->next_target < engine->count) {
            bool slot_free = false;
            for (const ProbeSlot& slot : engine->slots) slot_free = slot_free || !slot.in_use;
            if (slot_free) continue;  // a probe just finished: its slot takes the next target now
        }

        int sockets = 0;
        TimestampTz wake_at = until;
        for (ProbeSlot& slot : engine->slots) {
            if (!slot.in_use || slot.result != ProbeResult::Pending) continue;
            if (slot.conn != nullptr || slot.resolution != nullptr) {
                if (slot.deadline < wake_at) wake_at = slot.deadline;
            } else if (slot.retry_at < wake_at) {
                wake_at = slot.retry_at;
            }
            if (slot.resolution != nullptr) {
                const TimestampTz poll_at = TimestampTzPlusMilliseconds(now, kResolvePollMs);
                if (poll_at < wake_at) wake_at = poll_at;
            }
            if (slot.conn != nullptr && PQsocket(slot.conn) >= 0) sockets++;
        }
        WaitEventSet* set = CreateWaitEventSet(CurrentMemoryContext, sockets + 2);
        AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, nullptr);
        AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, nullptr, nullptr);
        for (ProbeSlot& slot : engine->slots) {
            if (!slot.in_use || slot.conn == nullptr || PQsocket(slot.conn) < 0) continue;
            const uint32 wanted = slot.poll == PGRES_POLLING_READING ? WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE;
            AddWaitEventToSet(set, wanted, PQsocket(slot.conn), nullptr, &slot);
        }
        const long timeout_ms = TimestampDifferenceMilliseconds(now, wake_at);
        const int ready =
            WaitEventSetWait(set, timeout_ms < 1 ? 1 : timeout_ms, events, sockets + 2, PG_WAIT_EXTENSION);
        FreeWaitEventSet(set);
        now = GetCurrentTimestamp();
        bool latch = false;
        for (int e = 0; e < ready; ++e) {
            if (events[e].events & WL_LATCH_SET) {
                ResetLatch(MyLatch);
                // SIGTERM exits here; open probe sockets close with the process.
                CHECK_FOR_INTERRUPTS();
                latch = true;
                continue;
            }
            ProbeSlot* slot = static_cast<ProbeSlot*>(events[e].user_data);
            if (slot != nullptr && slot->conn != nullptr) advance(slot, settings, now);
        }
        if (latch && mode == DriveMode::Idle) {
            for (ProbeSlot& slot : engine->slots) delivered = deliver(&slot) || delivered;
            break;
        }
    }
    pfree(events);
    return delivered;
}

}  // namespace

ProbeResult classify_failed_connection(const FailedConnection& failure) {
    // Class 57 (operator intervention): starting up, shutting down, in recovery,
    // not accepting connections: the server runs but cannot serve as a primary.
    if (failure.sqlstate[0] != '\0') return strncmp(failure.sqlstate, "57", 2) == 0 ? ProbeResult::Down : ProbeResult::Up;
    // Asked for authentication: past the postmaster's admission checks.
    if (failure.auth_requested || failure.needs_password) return ProbeResult::Up;
    // Refused, reset, timed out, TLS failure, or bytes that are not the protocol.
    return ProbeResult::Down;
}

ProbeEngine* create_probe_engine() {
    MemoryContext memory = AllocSetContextCreate(TopMemoryContext, "autofailover probes", ALLOCSET_DEFAULT_SIZES);
    ProbeEngine* engine = static_cast<ProbeEngine*>(MemoryContextAllocZero(memory, sizeof(ProbeEngine)));
    engine->memory = memory;
    return engine;
}

void probe_round(ProbeEngine* engine, ProbeTarget* targets, std::size_t count, const ProbeSettings& settings,
                 std::int64_t wait_until) {
    for (std::size_t i = 0; i < count; ++i) targets[i].result = ProbeResult::Pending;
    engine->targets = targets;
    engine->count = count;
    engine->next_target = 0;
    engine->running = static_cast<bool*>(palloc0(sizeof(bool) * (count + 1)));
    // Running probes find their node again; those whose node is gone (or moved) stop.
    for (ProbeSlot& slot : engine->slots) {
        if (!slot.in_use) continue;
        slot.target = nullptr;
        slot.this_round = false;
        for (std::size_t i = 0; i < count && slot.target == nullptr; ++i) {
            if (targets[i].node_id == slot.node_id && targets[i].port == slot.port &&
                strcmp(targets[i].host, slot.host) == 0) {
                slot.target = &targets[i];
                engine->running[i] = true;
            }
        }
        if (slot.target == nullptr) release_slot(&slot);
    }
    drive(engine, settings, wait_until, DriveMode::Round);
}

bool probe_idle(ProbeEngine* engine, const ProbeSettings& settings, std::int64_t until) {
    return drive(engine, settings, until, DriveMode::Idle);
}

void probe_abandon_all(ProbeEngine* engine) {
    for (ProbeSlot& slot : engine->slots)
        if (slot.in_use) release_slot(&slot);
    reap_resolutions(engine);
}

}  // namespace autofailover_ext
