"""Prometheus metrics of one app: requests by route and status, answers by mode, index size, readiness.

With several worker processes (`ketluan serve --workers N`) the CLI sets PROMETHEUS_MULTIPROC_DIR, every
worker writes its values there, and /metrics from any worker reports all of them together.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Its own registry, so several apps (tests, workers) never collide in the global one."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ketluan_http_requests_total", "HTTP requests by method, route template and status",
            ["method", "route", "status"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "ketluan_http_request_duration_seconds", "time to the end of the response, by method and route",
            ["method", "route"], buckets=_LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.answers = Counter(
            "ketluan_answers_total", "chat answers by mode and whether the corpus supported an answer",
            ["mode", "answered", "channel"], registry=self.registry,
        )  # fmt: skip
        self.feedback = Counter(
            "ketluan_feedback_total", "feedback by rating", ["rating"], registry=self.registry
        )
        self.rate_limited = Counter(
            "ketluan_rate_limited_total", "requests refused by the per-client rate limit",
            registry=self.registry,
        )  # fmt: skip
        # across workers: the largest index any live worker serves; ready only when every live worker is
        self.passages = Gauge("ketluan_index_passages", "passages in the served index",
                              registry=self.registry, multiprocess_mode="livemax")  # fmt: skip
        self.documents = Gauge("ketluan_index_documents", "documents in the served index",
                               registry=self.registry, multiprocess_mode="livemax")  # fmt: skip
        self.ready = Gauge("ketluan_ready", "1 when the index is loaded and answering",
                           registry=self.registry, multiprocess_mode="livemin")  # fmt: skip
        self.ready.set(0)

    def index_changed(self, documents: int, passages: int) -> None:
        """Called by the index holder whenever it starts serving a build."""
        self.documents.set(documents)
        self.passages.set(passages)
        self.ready.set(1)

    def close(self) -> None:
        """At worker shutdown: its live gauges no longer count."""
        if self.multiprocess:
            multiprocess.mark_process_dead(os.getpid())

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def observe_answer(self, mode: str, answered: bool, channel: str = "api") -> None:
        self.answers.labels(mode, "true" if answered else "false", channel).inc()

    def render(self) -> bytes:
        if not self.multiprocess:
            return generate_latest(self.registry)
        combined = CollectorRegistry()
        multiprocess.MultiProcessCollector(combined)
        return generate_latest(combined)
