"""Prometheus metrics of one app: requests by route and status, answers by mode, index size, readiness."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Its own registry, so several apps (tests, workers) never collide in the global one."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
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
        self.passages = Gauge(
            "ketluan_index_passages", "passages in the served index", registry=self.registry
        )
        self.documents = Gauge(
            "ketluan_index_documents", "documents in the served index", registry=self.registry
        )
        self.ready = Gauge(
            "ketluan_ready", "1 when the index is loaded and answering", registry=self.registry
        )

    def bind(
        self, passages: Callable[[], float], documents: Callable[[], float], ready: Callable[[], float]
    ) -> None:
        """Gauges read at scrape time, so they never go stale after a reload."""
        self.passages.set_function(passages)
        self.documents.set_function(documents)
        self.ready.set_function(ready)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def observe_answer(self, mode: str, answered: bool, channel: str = "api") -> None:
        self.answers.labels(mode, "true" if answered else "false", channel).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
