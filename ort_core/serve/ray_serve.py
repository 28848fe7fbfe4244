"""A Ray Serve deployment of the ``ort-core serve`` HTTP front end: the same repository,
scheduler (dynamic batching, bounded queue), protocol and metrics, in each replica.

    from ray import serve
    from ort_core.serve.ray_serve import deployment
    serve.run(deployment("models/", num_replicas=2), route_prefix="/")

Ray Serve's proxy routes HTTP requests to the replicas; each replica answers the Open Inference
Protocol's REST endpoints (``/v2/...``) and its own ``/metrics``. Ray Serve's gRPC proxy speaks
only Ray's own servicer convention, so the protocol's gRPC service is served by
``ort-core serve`` itself, not through Ray Serve.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._deps import require
from .config import ServerOptions

__all__ = ["OrtServeDeployment", "deployment"]


class OrtServeDeployment:
    """One replica: loads the repository at start, serves it through the ASGI app.

    Args:
        model_or_repository: a ``.onnx`` file or a repository folder every replica can read.
        options: ServerOptions (ports are ignored: Ray Serve's proxy owns HTTP).
    """

    def __init__(self, model_or_repository: str, options: ServerOptions | None = None) -> None:
        from .errors import ModelLoadError
        from .metrics import Metrics
        from .repository import ModelRepository
        from .service import InferenceService

        self.options = options or ServerOptions()
        metrics = Metrics()
        self.repository = ModelRepository(model_or_repository, self.options, metrics)
        failed = self.repository.load_all()
        if failed:
            self.repository.close(0)
            raise ModelLoadError(
                "models failed to load: " + "; ".join(f"{n}: {m}" for n, m in failed.items())
            )
        self.service = InferenceService(self.repository, metrics)

    def __serve_build_asgi_app__(self) -> Any:
        from .http_app import build_app

        return build_app(self.service, self.options.max_request_bytes)

    def __del__(self) -> None:
        repo = getattr(self, "repository", None)
        if repo is not None:
            repo.close(self.options.graceful_timeout_s)


def deployment(
    model_or_repository: str | Path,
    *,
    options: ServerOptions | None = None,
    num_replicas: int = 1,
    ray_actor_options: dict[str, Any] | None = None,
    name: str = "ort-core-serve",
) -> Any:
    """A bound Ray Serve application (``serve.run(app)``) of ``num_replicas`` replicas.

    ``ray_actor_options`` sets each replica's resources (``{"num_gpus": 1}`` for the CUDA
    provider, ``{"num_cpus": 2}``...).
    """
    serve = require("ray.serve", "ort-core's Ray Serve deployment")
    cls = serve.ingress()(OrtServeDeployment)
    dep = serve.deployment(
        name=name, num_replicas=num_replicas, ray_actor_options=ray_actor_options or {}
    )(cls)
    return dep.bind(str(model_or_repository), options)
