"""The cluster simulation (benchmarks/cluster.py), small: two replicas of `ketluan serve` in their own network
namespaces behind HAProxy, Redis in another. A replica killed, Redis restarted and a new index rolled out
replica by replica under load fail no request; a conversation continues across replicas. Everything it
created is gone afterwards. `make cluster-test` runs the full size (1,000 requests a scenario, 32 clients)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.cluster import Cluster, run_scenarios, why_not

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="the cluster simulation needs root to create network namespaces"
)
REQUESTS = 100


@pytest.mark.timeout(900)
def test_a_cluster_loses_no_request_to_a_dead_replica_a_redis_restart_or_a_rolling_update(
    tmp_path: Path,
) -> None:
    if reason := why_not():
        pytest.fail(reason)
    cluster = Cluster(tmp_path, replicas=2, model="hashing-64", log=lambda _: None)
    try:
        cluster.up()
        result = run_scenarios(cluster, REQUESTS, 8, log=lambda _: None)
    finally:
        cluster.down()
    assert not cluster.leftovers()
    for scenario in ("replica_kill", "redis_restart", "rolling_update"):
        assert result[scenario]["requests"] >= REQUESTS
        assert result[scenario]["failed"] == 0, result[scenario]
    assert result["redis_restart"]["degraded_during_outage"], result["redis_restart"]
    assert result["redis_restart"]["ready_after"] and result["redis_restart"]["shared_state_back"]
    rolling = result["rolling_update"]
    assert rolling["mixed"] == 0 and rolling["versions_seen"] == sorted([rolling["old"], rolling["new"]])
    assert rolling["all_on_new"]
    assert result["conversation_across_replicas"], result["conversation_detail"]
