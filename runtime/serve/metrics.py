"""The HTTP service's Prometheus metrics, on ``prometheus_client``: requests by route and
status, a latency histogram per route, requests in flight, request bodies being received, the
queue depth and batch sizes.

Each service keeps its own registry, so several apps in one process (tests) never share
counters. With ``PROMETHEUS_MULTIPROC_DIR`` set (several server processes behind one port),
``/metrics`` aggregates every process's files the way prometheus_client documents.
"""

from __future__ import annotations

import os
from collections.abc import Callable

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class Metrics:
    def __init__(self, queue_depth: Callable[[], int] = lambda: 0) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("s2f_requests", "Requests answered, by route and status.", ["route", "status"],
                                registry=self.registry)
        self.latency = Histogram("s2f_request_duration_seconds", "Time from request to response, by route.",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_sizes = Histogram("s2f_batch_size", "Requests per onnxruntime run.", buckets=BATCH_BUCKETS,
                                     registry=self.registry)
        self.queue_depth = Gauge("s2f_queue_depth", "Requests waiting for the model.", registry=self.registry,
                                 multiprocess_mode="livesum")
        self.queue_depth.set_function(lambda: self.waiting())
        self.in_flight_gauge = Gauge("s2f_requests_in_flight", "Requests accepted and not yet answered.",
                                     registry=self.registry, multiprocess_mode="livesum")
        self.uploads_in_progress = Gauge("s2f_uploads_in_progress", "Request bodies being received.",
                                         registry=self.registry, multiprocess_mode="livesum")
        self.waiting = queue_depth
        self.in_flight = 0  # admission reads it; the gauge mirrors it

    def admit(self) -> None:
        self.in_flight += 1
        self.in_flight_gauge.inc()

    def release(self) -> None:
        self.in_flight -= 1
        self.in_flight_gauge.dec()

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route=route, status=str(status)).inc()
        self.latency.labels(route=route).observe(seconds)

    def observe_batch(self, size: int) -> None:
        self.batch_sizes.observe(size)

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)
            return generate_latest(merged), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
