"""Prometheus metrics of one server (its own registry, so servers in one process stay apart)."""

from __future__ import annotations

from typing import Any

from ._deps import require

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """The server's metrics, exposed at ``/metrics`` in Prometheus' text format.

    - ``ort_core_serve_requests_total{model,version,protocol,status}``: finished inference requests
      (status: ``success`` or the HTTP status code of the error);
    - ``ort_core_serve_request_duration_seconds{model,version,protocol}``: request latency, from
      the decoded request to the encoded response;
    - ``ort_core_serve_queue_duration_seconds{model,version}``: time a request waited in the queue;
    - ``ort_core_serve_compute_duration_seconds{model,version}``: time of one session run;
    - ``ort_core_serve_batch_size{model,version}``: rows per session run (dynamic batching merges);
    - ``ort_core_serve_queue_depth{model,version}``: requests waiting now;
    - ``ort_core_serve_rejected_total{model,version}``: requests refused because the queue was full.
    """

    def __init__(self) -> None:
        pc = require("prometheus_client")
        self._pc = pc
        self.registry = pc.CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = pc.Counter(
            "ort_core_serve_requests",
            "Inference requests by outcome",
            ["model", "version", "protocol", "status"],
            registry=r,
        )
        histograms = {
            "request_latency": ("request_duration_seconds", "Inference request latency", True),
            "queue_time": ("queue_duration_seconds", "Time requests waited in the queue", False),
            "compute_time": ("compute_duration_seconds", "Duration of one session run", False),
            "batch_size": ("batch_size", "Rows per session run", False),
        }
        for attr, (name, doc, per_protocol) in histograms.items():
            labels = ["model", "version", "protocol"] if per_protocol else ["model", "version"]
            buckets = _BATCH_BUCKETS if attr == "batch_size" else _LATENCY_BUCKETS
            metric = pc.Histogram(
                f"ort_core_serve_{name}", doc, labels, buckets=buckets, registry=r
            )
            setattr(self, attr, metric)
        self.queue_depth = pc.Gauge(
            "ort_core_serve_queue_depth", "Requests waiting", ["model", "version"], registry=r
        )
        self.rejected = pc.Counter(
            "ort_core_serve_rejected",
            "Requests refused because the model queue was full",
            ["model", "version"],
            registry=r,
        )

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in Prometheus' text format, and its content type."""
        return self._pc.generate_latest(self.registry), self._pc.CONTENT_TYPE_LATEST

    def observe_request(
        self, model: str, version: str, protocol: str, status: str, seconds: float
    ) -> None:
        self.requests.labels(model, version, protocol, status).inc()
        if status == "success":
            self.request_latency.labels(model, version, protocol).observe(seconds)

    def model(self, model: str, version: str) -> Any:
        """The per-model instruments the scheduler updates."""
        return _ModelMetrics(self, model, version)


class _ModelMetrics:
    __slots__ = ("queue_time", "compute_time", "batch_size", "queue_depth", "rejected")

    def __init__(self, m: Metrics, model: str, version: str) -> None:
        self.queue_time = m.queue_time.labels(model, version)
        self.compute_time = m.compute_time.labels(model, version)
        self.batch_size = m.batch_size.labels(model, version)
        self.queue_depth = m.queue_depth.labels(model, version)
        self.rejected = m.rejected.labels(model, version)
