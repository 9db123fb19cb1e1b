"""Unit tests of checker.py on synthetic writer records (no PostgreSQL needed)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import checker  # noqa: E402
from writer import Attempt, _with_defaults  # noqa: E402


def acks(server, times, writer="w", first_id=0):
    return [Attempt(first_id + i, t - 0.01, t, "ack", server, "", writer) for i, t in enumerate(times)]


def test_downtime_longest_and_total_with_threshold():
    recs = acks("A", [1.0, 1.1, 1.2, 4.2, 4.3]) + acks("B", [4.4, 5.0, 5.1], first_id=100)
    dt = checker.downtime(recs, start=0.9, end=5.2, threshold=0.5)
    assert abs(dt.longest - 3.0) < 1e-9
    assert abs(dt.total - (3.0 + 0.6)) < 1e-9
    assert dt.gaps == [(1.2, 4.2), (4.4, 5.0)]


def test_downtime_counts_leading_and_trailing_gaps():
    recs = acks("A", [3.0, 3.1])
    dt = checker.downtime(recs, start=0.0, end=10.0, threshold=0.5)
    assert abs(dt.longest - 6.9) < 1e-9
    assert abs(dt.total - 9.9) < 1e-9


def test_downtime_no_ack_at_all_is_whole_run():
    dt = checker.downtime([Attempt(1, 0.5, 1.0, "unknown", "A", "x", "w")], start=0.0, end=4.0)
    assert dt.longest == 4.0 and dt.total == 4.0


def test_failed_and_unknown_attempts_do_not_count_as_acks():
    recs = acks("A", [1.0]) + [Attempt(50, 1.5, 2.0, "fail", "A", "ro", "w"),
                               Attempt(51, 2.0, 3.0, "unknown", "A", "lost", "w")] + acks("A", [4.0], first_id=60)
    assert abs(checker.downtime(recs).longest - 3.0) < 1e-9


def test_lost_commits_are_acked_ids_missing_on_final_primary():
    recs = acks("A", [1, 2, 3, 4]) + [Attempt(99, 5, 6, "unknown", "A", "", "w")]
    assert checker.lost_commits(recs, {0, 1, 3}) == [2]
    # an unknown outcome missing on the final primary is not a lost acknowledged commit
    assert checker.lost_commits(recs, {0, 1, 2, 3}) == []


def test_ack_overlaps_detect_two_servers_acking_at_once():
    w1 = acks("A", [1.0, 2.0, 3.0, 4.0], writer="w1")
    w2 = acks("B", [2.5, 3.5, 5.0], writer="w2", first_id=100)
    ov = checker.ack_overlaps(w1 + w2)
    assert len(ov) == 1
    assert (ov[0].a, ov[0].b) in (("A", "B"), ("B", "A"))
    assert abs(ov[0].start - 2.5) < 1e-9 and abs(ov[0].end - 4.0) < 1e-9


def test_ack_overlaps_single_ack_inside_other_window():
    w1 = acks("A", [1.0, 5.0], writer="w1")
    w2 = acks("B", [3.0], writer="w2", first_id=100)
    assert len(checker.ack_overlaps(w1 + w2)) == 1


def test_clean_failover_has_no_overlap_and_no_flip_back():
    recs = acks("A", [1.0, 1.1, 1.2]) + acks("B", [4.0, 4.1], first_id=100)
    assert checker.ack_overlaps(recs) == []
    assert checker.flip_backs(recs) == []


def test_same_server_in_two_writers_is_not_split_brain():
    recs = acks("A", [1.0, 2.0], writer="w1") + acks("A", [1.5, 2.5], writer="w2", first_id=100)
    assert checker.ack_overlaps(recs) == []


def test_flip_back_old_primary_acks_again():
    recs = acks("A", [1.0, 1.1]) + acks("B", [2.0], first_id=10) + acks("A", [3.0], first_id=20)
    assert checker.flip_backs(recs) == [("A", 3.0)]
    r = checker.evaluate(recs, {0, 1, 10, 20})
    assert any("acknowledged again" in p for p in r.problems())
    r = checker.evaluate(recs, {0, 1, 10, 20}, allow_flip_backs=True)
    assert r.problems() == []


def test_writable_overlaps_from_probe_samples():
    samples = [
        (1.0, {"n1": True, "n2": False, "n3": False}),
        (1.1, {"n1": True, "n2": True, "n3": False}),
        (1.2, {"n1": True, "n2": True, "n3": None}),
        (1.3, {"n1": None, "n2": True, "n3": False}),
        (1.4, {"n1": True, "n2": False, "n3": True}),
    ]
    ov = checker.writable_overlaps(samples)
    assert [(o.a, o.b, o.start, o.end) for o in ov] == [("n1", "n2", 1.1, 1.2), ("n1", "n3", 1.4, 1.4)]


def test_writable_overlaps_none_when_one_writer():
    samples = [(t / 10, {"n1": t < 5, "n2": t >= 5}) for t in range(10)]
    assert checker.writable_overlaps(samples) == []


def test_full_health():
    ok = [{"reported_state": "primary", "goal_state": "primary", "keeper_reporting": True},
          {"reported_state": "secondary", "goal_state": "secondary", "keeper_reporting": True},
          {"reported_state": "secondary", "goal_state": "secondary", "keeper_reporting": True}]
    assert checker.is_full_health(ok)
    assert not checker.is_full_health([])
    catching = [dict(ok[0]), dict(ok[1], reported_state="catchingup"), ok[2]]
    assert not checker.is_full_health(catching)
    two = [ok[0], dict(ok[1], reported_state="primary", goal_state="primary"), ok[2]]
    assert not checker.is_full_health(two)
    silent = [ok[0], dict(ok[1], keeper_reporting=False), ok[2]]
    assert not checker.is_full_health(silent)
    wait_primary = [dict(ok[0], reported_state="wait_primary", goal_state="wait_primary")]
    assert not checker.is_full_health(wait_primary)


def test_evaluate_result_clean_and_summary():
    recs = acks("A", [1.0, 1.1]) + acks("B", [3.0, 3.1], first_id=10)
    r = checker.evaluate(recs, {0, 1, 10, 11}, start=0.95, end=3.2, time_to_health_s=7.5)
    assert r.problems() == []
    assert r.acked == 4 and r.lost_ids == []
    assert abs(r.longest_gap_s - 1.9) < 1e-9
    assert "lost=0" in r.summary() and "health_after=7.5s" in r.summary()


def test_evaluate_reports_lost_and_no_acks():
    recs = acks("A", [1.0, 1.1])
    assert any("lost" in p for p in checker.evaluate(recs, {0}).problems())
    assert any("no commit" in p for p in checker.evaluate([], set()).problems())


def test_records_roundtrip_as_dicts(tmp_path):
    import dataclasses
    import json
    recs = acks("A", [1.0, 2.0])
    path = tmp_path / "r.jsonl"
    with open(path, "w") as f:
        f.write(json.dumps({"kind": "writer", "started_at": 0.5, "stopped_at": 2.5}) + "\n")
        for r in recs:
            f.write(json.dumps(dataclasses.asdict(r)) + "\n")
    header, loaded = checker.load_records(str(path))
    r = checker.evaluate(loaded, {0, 1}, header["started_at"], header["stopped_at"])
    assert r.acked == 2 and abs(r.longest_gap_s - 1.0) < 1e-9


def test_uri_defaults_added_once():
    u = _with_defaults("postgresql://u@h1:1,h2:2/db?connect_timeout=5", 2)
    assert "target_session_attrs=read-write" in u and u.count("connect_timeout") == 1
    assert "connect_timeout=5" in u
    k = _with_defaults("host=h1,h2 port=1,2 target_session_attrs=any", 2)
    assert k.count("target_session_attrs") == 1 and "connect_timeout=2" in k


def test_proven_overlaps_need_each_nodes_own_answers():
    # n1 answered writable at 1.0 and 1.1, then stopped answering (paused): a stale answer proves nothing
    answers = {"n1": [(1.0, True), (1.1, True), (2.5, None)],
               "n2": [(1.0, False), (1.5, True), (1.6, True)]}
    assert checker.proven_writable_overlaps(answers, max_gap=0.3) == []
    # n1 kept answering writable while n2 became writable: proven
    answers["n1"] = [(1.0, True), (1.2, True), (1.4, True), (1.6, True), (1.8, False)]
    ov = checker.proven_writable_overlaps(answers, max_gap=0.3)
    assert [(o.a, o.b, o.start, o.end) for o in ov] == [("n1", "n2", 1.5, 1.6)]


def test_writable_intervals_break_on_gaps_and_false():
    ans = [(0.0, True), (0.1, True), (1.0, True), (1.1, False), (1.2, True)]
    assert checker.writable_intervals(ans, max_gap=0.3) == [(0.0, 0.1), (1.0, 1.0), (1.2, 1.2)]


def test_evaluate_prefers_proven_overlaps():
    recs = acks("A", [1.0, 2.0])
    coarse = [(1.0, {"n1": True, "n2": True})]
    assert len(checker.evaluate(recs, {0, 1}, samples=coarse).writable_overlaps) == 1
    assert checker.evaluate(recs, {0, 1}, samples=coarse, overlaps=[]).writable_overlaps == []
