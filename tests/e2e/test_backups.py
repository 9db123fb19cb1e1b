"""pgBackRest integration (docs/backups.md) on a 2-node formation created with
`--backup pgbackrest`, the repository a local directory owned by the test user:

1. `autoctl perform backup` creates the stanza and takes a full backup copied
   from the streaming standby (--backup-standby); `autoctl show backups` lists it;
   every node runs with the keeper's archive_mode/archive_command.
2. While the writer commits: a switchover, then a machine crash of the new
   primary right after it completed WAL segments (its archiver busy); the old
   primary rejoins (pg_rewind --restore-target-wal). Then `pgbackrest check`
   passes on the last primary, the archive has every segment from the backup's
   start to the end across both timeline switches, and a point-in-time restore
   of the backup into a scratch directory (its own port, archiving off), to a
   time after the failover, holds every commit acknowledged before that time.
3. A node dropped and re-created with an empty data directory is built from the
   backup (`pgbackrest restore --type=standby`, logged), replays the archive
   across the timeline switches (none of that WAL is on the primary for it:
   its slot is new) and streams again.
"""

import json
import os
import re
import shutil
import subprocess
import time

import pytest

from formation import PG_BINDIR, _user_ids, as_user, psql_as_test_user
from workload import Workload

STANZA = "af"
WAL_SEGMENT_BYTES = 16 * 1024 * 1024
SEGMENT_FILE = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})-[0-9a-f]{40}(\.[a-z0-9]+)?$")
# Failover + rejoin on this shared 2-core machine.
HEALTH_TIMEOUT = 150.0
PITR_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def formation(formation_factory):
    f = formation_factory(port_offset=0)
    base = os.path.join(f.workdir, "pgbackrest")
    uid, gid = _user_ids()
    for sub in ("", "repo", "log", "spool", "lock"):
        os.makedirs(os.path.join(base, sub), mode=0o750, exist_ok=True)
        os.chown(os.path.join(base, sub), uid, gid)
    f.pgbackrest_conf = os.path.join(base, "pgbackrest.conf")
    f.pgbackrest_repo = os.path.join(base, "repo")
    with open(f.pgbackrest_conf, "w") as out:
        out.write(f"[global]\nrepo1-path={base}/repo\nrepo1-retention-full=4\nlog-path={base}/log\n"
                  f"spool-path={base}/spool\nlock-path={base}/lock\nlog-level-console=warn\n"
                  f"log-level-file=info\n")
    os.chown(f.pgbackrest_conf, uid, gid)
    f.node_extra_args = ["--backup", "pgbackrest", "--backup-stanza", STANZA, "--backup-config", f.pgbackrest_conf]
    f.create_monitor()
    f.create_node("node1")
    f.create_node("node2")
    f.wait_healthy()
    return f


def pgbackrest(f, *args, node=None, check=True, timeout=300):
    argv = ["pgbackrest", f"--config={f.pgbackrest_conf}", f"--stanza={STANZA}"]
    if node is not None:
        argv += [f"--pg1-path={node.pgdata}", f"--pg1-port={node.port}", f"--pg1-socket-path={node.socket_dir()}"]
    r = subprocess.run(as_user(argv + list(args)), capture_output=True, text=True, timeout=timeout, cwd="/")
    if check:
        assert r.returncode == 0, f"pgbackrest {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r


def segno(name):
    return int(name[8:16], 16) * 0x100 + int(name[16:24], 16)


def archived_segments(f):
    """{(timeline, segment number)} of the complete WAL segments in the repository, and the history files."""
    root = os.path.join(f.pgbackrest_repo, "archive", STANZA)
    segments, histories = set(), {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            m = SEGMENT_FILE.match(name)
            if m:
                segments.add((int(m.group(1), 16), segno(name)))
            elif re.match(r"^[0-9A-F]{8}\.history$", name):
                with open(os.path.join(dirpath, name)) as h:
                    histories[int(name[:8], 16)] = h.read()
    return segments, histories


def lsn_to_int(text):
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def archive_gaps(f, first_segment):
    """Segments a recovery from `first_segment` to the end of the newest timeline
    would need and cannot find in the archive. A segment is read from the newest
    timeline that holds it: the one whose switch point lies after it, the newest
    timeline for the rest (the switch segment itself is on the new timeline)."""
    segments, histories = archived_segments(f)
    newest = max(t for t, _ in segments)
    switches = []  # (timeline, first segment of the next timeline)
    for line in histories.get(newest, "").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            switches.append((int(parts[0]), lsn_to_int(parts[1]) // WAL_SEGMENT_BYTES))
    last = max(s for t, s in segments if t == newest)
    missing = []
    for seg in range(first_segment, last + 1):
        timeline = next((t for t, switch_seg in switches if seg < switch_seg), newest)
        if (timeline, seg) not in segments:
            missing.append(f"{timeline:08X}{seg // 0x100:08X}{seg % 0x100:08X}")
    return missing, newest, switches


def test_backup_from_the_standby_and_managed_archiving(formation):
    f = formation
    primary = f.primary()
    standby = f.standbys()[0]
    for node in (primary, standby):
        assert node.sql("SHOW archive_mode")[0][0] == "on"
        command = node.sql("SHOW archive_command")[0][0]
        assert f"--pg1-path={node.pgdata}" in command and "archive-push" in command, command
        assert "archive-get" in node.sql("SHOW restore_command")[0][0]
    started = time.monotonic()
    r = f.autoctl("perform", "backup", "--pgdata", primary.pgdata, "--pgdata", standby.pgdata)
    print(f"\nperform backup ({time.monotonic() - started:.1f}s): {r.stdout.strip()}")
    assert f"files copied from {standby.name}, primary {primary.name}" in r.stdout, r.stdout + r.stderr
    info = json.loads(f.autoctl("show", "backups", "--pgdata", primary.pgdata, "--json").stdout)
    assert info["status_code"] == 0 and len(info["backups"]) == 1, info
    assert info["backups"][0]["type"] == "full"
    print(f.autoctl("show", "backups", "--pgdata", standby.pgdata).stdout)
    # A standby alone cannot start a backup: pgBackRest needs the primary.
    r = f.autoctl("perform", "backup", "--pgdata", standby.pgdata, check=False)
    assert r.returncode == 1 and "none of these nodes is the primary" in r.stderr, r.stderr


def test_failovers_keep_the_archive_whole_and_pitr_holds_every_ack(formation):
    f = formation
    backup = json.loads(f.autoctl("show", "backups", "--pgdata", f.nodes["node1"].pgdata, "--json").stdout)["backups"][-1]
    # node1 is the primary again after the crash of node2: a planned flip back, not a split brain.
    with Workload(f, "backups: switchover, crash while archiving, PITR", allow_flip_backs=True) as w:
        w.wait_for_commits(30)
        f.autoctl("perform", "switchover", "--wait", "120")
        f.wait_healthy(timeout=HEALTH_TIMEOUT)
        w.wait_for_commits(30)
        victim = f.primary()
        # Complete segments and crash before the archiver can have pushed them all.
        for _ in range(3):
            victim.sql("SELECT pg_switch_wal()")
            w.wait_for_commits(2)
        victim.kill_keeper()
        victim.kill_postgres()
        crashed_at = time.time()
        f.wait_until(lambda s: any(n != victim.name and v["reported_state"] in ("wait_primary", "primary")
                                   for n, v in s.items()), "a new primary", timeout=HEALTH_TIMEOUT)
        w.wait_for_commits(30)
        victim.start_keeper()
        f.wait_healthy(timeout=HEALTH_TIMEOUT)
        w.wait_for_commits(30)
        pitr_target = time.time()
        time.sleep(0.05)
        w.wait_for_commits(30)  # commits after the target: recovery stops at the first of them
    w.assert_clean()
    primary = f.primary()
    rejoin = open(os.path.join(f.workdir, f"{victim.name}.keeper.out"), errors="replace").read()
    assert re.search(r"pg_rewind \(--restore-target-wal\) from \S+ done", rejoin), rejoin[-3000:]
    started = time.monotonic()
    pgbackrest(f, "check", node=primary)  # switches WAL on the primary and waits until it is archived
    print(f"\npgbackrest check on {primary.name}: ok ({time.monotonic() - started:.1f}s)")
    missing, newest, switches = archive_gaps(f, segno(backup["wal_start"]))
    print(f"archive: timeline {newest}, switches {switches}, from {backup['wal_start']}: {len(missing)} missing")
    assert newest >= 3 and len(switches) >= 2, (newest, switches)
    assert not missing, f"segments missing from the archive: {missing}"

    # Point-in-time restore of the backup (taken on timeline 1) to after the failover.
    scratch = os.path.join(f.workdir, "pitr")
    os.makedirs(scratch, mode=0o700)
    os.chown(scratch, *_user_ids())
    target = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(pitr_target)) + f".{int(pitr_target % 1 * 1e6):06d}+00"
    started = time.monotonic()
    pgbackrest(f, "restore", f"--pg1-path={scratch}", "--type=time", f"--target={target}",
               "--target-action=promote", "--archive-mode=off")
    restored_at = time.monotonic()
    port = f.port_base + 9
    pg_ctl = os.path.join(PG_BINDIR, "pg_ctl")
    options = (f"-c port={port} -c listen_addresses='' -c unix_socket_directories={scratch} -c archive_mode=off "
               f"-c shared_preload_libraries='' -c ssl=off")
    try:
        r = subprocess.run(as_user([pg_ctl, "-D", scratch, "-l", scratch + ".log", "-w", "-t", str(int(PITR_TIMEOUT)),
                                    "-o", options, "start"]), capture_output=True, text=True, timeout=PITR_TIMEOUT + 10)
        assert r.returncode == 0, r.stdout + r.stderr + open(scratch + ".log").read()[-3000:]
        deadline = time.monotonic() + PITR_TIMEOUT
        while psql_as_test_user(scratch, port, "postgres", "SELECT pg_is_in_recovery()") != "f":
            assert time.monotonic() < deadline, open(scratch + ".log").read()[-3000:]
            time.sleep(0.2)
        recovered_at = time.monotonic()
        present = {int(x) for x in psql_as_test_user(scratch, port, "postgres",
                                                     f"SELECT id FROM {w.writer.table}").split()}
    finally:
        subprocess.run(as_user([pg_ctl, "-D", scratch, "-m", "immediate", "stop"]), capture_output=True, timeout=60)
    acked_before = [a.id for a in w.writer.attempts if a.status == "ack" and a.t_done < pitr_target]
    after_crash = [a for a in w.writer.attempts if a.status == "ack" and crashed_at < a.t_done < pitr_target]
    acked_after = [a.id for a in w.writer.attempts if a.status == "ack" and a.t_sent > pitr_target]
    lost = sorted(set(acked_before) - present)
    print(f"PITR to {target}: restore {restored_at - started:.1f}s, recovery {recovered_at - restored_at:.1f}s; "
          f"{len(acked_before)} commits acknowledged before the target ({len(after_crash)} after the crash), "
          f"{len(lost)} missing; {len(set(acked_after) & present)} of {len(acked_after)} later ones present")
    assert after_crash, "no commit acknowledged between the crash and the target: the test proves nothing"
    assert not lost, f"acknowledged before {target} but not in the restored copy: {lost[:10]}"
    assert not set(acked_after) & present, "the restore went past its target"


def test_new_standby_is_built_from_the_backup(formation):
    f = formation
    gone = f.standbys()[0]
    survivor = f.primary()
    f.autoctl("drop", "node", "--pgdata", gone.pgdata, "--wait", "60")
    if gone.keeper is not None:
        assert gone.keeper.wait(timeout=60) == 121
    shutil.rmtree(gone.pgdata)
    shutil.rmtree(gone.state_dir)
    survivor.sql("CREATE TABLE IF NOT EXISTS after_drop AS SELECT 42 AS answer")
    node = f.new_node("node3")
    started = time.monotonic()
    r = f.autoctl(*f.create_args(node))
    print(f"\ncreate postgres node3 ({time.monotonic() - started:.1f}s):\n"
          + "\n".join(line for line in r.stderr.splitlines() if "pgBackRest" in line or "pg_basebackup" in line))
    assert "standby built from pgBackRest backup" in r.stderr, r.stderr
    assert "pg_basebackup from" not in r.stderr, r.stderr
    f.shorten_keeper_timeouts(node)
    node.start_keeper()
    f.wait_healthy(timeout=HEALTH_TIMEOUT)
    assert node.sql("SELECT answer FROM after_drop") == [(42,)]
    server_log = open(os.path.join(f.workdir, "node3.postgres.log"), errors="replace").read()
    restored = re.findall(r'restored log file "([0-9A-F]{24})" from archive', server_log)
    timelines = sorted({int(name[:8], 16) for name in restored})
    print(f"node3 replayed {len(restored)} segments from the archive, timelines {timelines}")
    assert len(timelines) >= 2, server_log[-3000:]


def test_a_failover_at_a_segment_boundary_leaves_no_archive_gap(formation):
    """What the standby received ends exactly at a segment boundary when the primary crashes (a WAL switch,
    nothing written after it): its walreceiver never closed that last complete segment, which then has no
    status file, and Postgres archives only a partial last segment at promotion. The keeper queues it before
    promoting (keeper/backup.cpp, queue_unclosed_segment); without that the archive has a gap there and a
    point-in-time recovery across the failover stops at it (seen once by a netns row B2). This test has not
    reproduced the unmarked segment itself (the walreceiver had marked it); it checks the boundary case end to
    end, and the Catch2 case [backup] checks the marking."""
    f = formation
    victim = f.primary()
    standby = f.standbys()[0]
    boundary = None
    for _ in range(20):   # something may write WAL between the switch and the crash: try again then
        victim.sql("SELECT pg_switch_wal()")
        (end, last_name), = victim.sql("SELECT pg_current_wal_lsn()::text, pg_walfile_name(pg_current_wal_lsn() - 1)")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and standby.sql("SELECT pg_last_wal_receive_lsn()::text")[0][0] != end:
            time.sleep(0.02)
        if lsn_to_int(end) % WAL_SEGMENT_BYTES == 0 and \
                victim.sql("SELECT pg_current_wal_lsn()::text")[0][0] == end and \
                standby.sql("SELECT pg_last_wal_receive_lsn()::text")[0][0] == end:
            boundary = end
            victim.kill_keeper()
            victim.kill_postgres()
            break
    assert boundary, "could not stop the primary at a segment boundary"
    f.wait_until(lambda s: s[standby.name]["reported_state"] in ("wait_primary", "primary"), "the standby promoted",
                 timeout=HEALTH_TIMEOUT)
    timeline = int(last_name[:8], 16)
    deadline = time.monotonic() + 90
    while True:
        segments, histories = archived_segments(f)
        switch = [line.split() for line in histories.get(timeline + 1, "").splitlines() if line.strip()]
        if (timeline, segno(last_name)) in segments and switch:
            break
        assert time.monotonic() < deadline, \
            f"{last_name} (the last segment before the switch at {boundary}) never reached the archive; history: {switch}"
        time.sleep(0.5)
    # the new timeline starts exactly at the boundary: the case this test is about did happen
    assert any(len(p) >= 2 and p[0] == str(timeline) and p[1] == boundary for p in switch), (switch, boundary)
    # Whether the walreceiver had left the segment unmarked (the keeper then logs "the last received WAL
    # segment (ending at ...) queued") varies: in the run of 2026-11-28 22:54 it had marked it, and the re-queue
    # of .done files archived it. The archive must hold it either way.
    log = open(os.path.join(f.workdir, f"{standby.name}.keeper.out"), errors="replace").read()
    marked_by_keeper = f"the last received WAL segment (ending at {boundary}) queued for archiving" in log
    print(f"\nfailover at the boundary {boundary}: {last_name} archived (queued by the boundary check: "
          f"{marked_by_keeper})")
