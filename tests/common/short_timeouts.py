"""The shortened timeouts of the test formations (e2e and faults), so that scenarios take seconds. Every one
is a named setting: MONITOR_SETTINGS are monitor GUCs (`autoctl create monitor --setting`), KEEPER_TIMEOUTS
keeper.json "timeouts". Callers copy them before changing them."""

MONITOR_SETTINGS = {
    "health_check_period": "300",
    "health_check_timeout": "500",
    "health_check_max_retries": "1",
    "health_check_retry_delay": "100",
    "node_considered_unhealthy_timeout": "2000",
    "network_partition_timeout": "1500",
    "fencing_margin": "500",
    "startup_grace_period": "1000",
}
KEEPER_TIMEOUTS = {
    "poll_period_ms": 250,
    "monitor_call_timeout_ms": 1000,
    "postgres_start_timeout_ms": 30000,
    "postgres_stop_timeout_ms": 30000,
    "promote_timeout_ms": 20000,
    "sync_rep_wait_timeout_ms": 20000,
    "fast_forward_timeout_ms": 20000,
}
