"""Prometheus text-format metrics of the HTTP service, without a client library: requests by
route and status, a latency histogram per route, the queue depth and the batch sizes."""

from __future__ import annotations

import threading
from collections import defaultdict

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class _Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.total += 1
        self.sum += value
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[index] += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        prefix = f"{labels}," if labels else ""
        out = [f'{name}_bucket{{{prefix}le="{bound:g}"}} {count}' for bound, count in zip(self.buckets, self.counts,
                                                                                        strict=True)]
        out.append(f'{name}_bucket{{{prefix}le="+Inf"}} {self.total}')
        label_part = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{label_part} {self.sum:.6f}", f"{name}_count{label_part} {self.total}"]
        return out


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.latency: dict[str, _Histogram] = {}
        self.batch_sizes = _Histogram(BATCH_BUCKETS)
        self.queue_depth = lambda: 0
        self.in_flight = 0

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(route, status)] += 1
            self.latency.setdefault(route, _Histogram(LATENCY_BUCKETS)).observe(seconds)

    def observe_batch(self, size: int) -> None:
        with self._lock:
            self.batch_sizes.observe(size)

    def render(self) -> str:
        with self._lock:
            lines = ["# HELP s2f_requests_total Requests answered, by route and status.",
                     "# TYPE s2f_requests_total counter"]
            lines += [f's2f_requests_total{{route="{route}",status="{status}"}} {count}'
                      for (route, status), count in sorted(self.requests.items())]
            lines += ["# HELP s2f_request_duration_seconds Time from request to response, by route.",
                      "# TYPE s2f_request_duration_seconds histogram"]
            for route, histogram in sorted(self.latency.items()):
                lines += histogram.lines("s2f_request_duration_seconds", f'route="{route}"')
            lines += ["# HELP s2f_queue_depth Requests waiting for the model.", "# TYPE s2f_queue_depth gauge",
                      f"s2f_queue_depth {self.queue_depth()}",
                      "# HELP s2f_requests_in_flight Requests accepted and not yet answered.",
                      "# TYPE s2f_requests_in_flight gauge", f"s2f_requests_in_flight {self.in_flight}",
                      "# HELP s2f_batch_size Requests per onnxruntime run.", "# TYPE s2f_batch_size histogram"]
            lines += self.batch_sizes.lines("s2f_batch_size")
        return "\n".join(lines) + "\n"
