"""Batch inference on Ray Data: ``Dataset.map_batches`` with a callable class that holds one
ort-core session per worker.

    import ray
    from ort_core.serve.ray_data import map_batches
    ds = ray.data.from_items([{"x": row} for row in rows])
    out = map_batches(ds, "model.onnx", providers=["CPUExecutionProvider"], concurrency=4)

With the CUDA provider each worker asks Ray for one GPU (``num_gpus=1``; Ray sets the worker's
CUDA_VISIBLE_DEVICES, so ``device_id`` 0 is that GPU). The model travels to the workers as bytes
in Ray's object store when given as bytes, or as a path every worker must be able to read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._deps import require

__all__ = ["OrtBatchPredictor", "map_batches"]


def _is_cuda(provider: Any) -> bool:
    name = provider[0] if isinstance(provider, (tuple, list)) else provider
    return str(name).lower() in ("cudaexecutionprovider", "cuda")


class OrtBatchPredictor:
    """Run one ort-core session over batches of columns (``batch_format="numpy"``).

    Args:
        model: path of an ``.onnx`` file (readable on every worker) or its bytes.
        providers: as ``InferenceSession`` takes them (names or ``(name, options)``).
        provider_options: as ``InferenceSession`` takes them (one dict per provider).
        input_columns: model input -> column holding it (default: the same name).
        output_columns: model output -> column to write (default: the same name).
        keep_columns: keep the batch's columns next to the outputs.
    """

    def __init__(
        self,
        model: str | bytes,
        providers: Sequence[Any] | None = None,
        provider_options: Sequence[dict] | None = None,
        input_columns: Mapping[str, str] | None = None,
        output_columns: Mapping[str, str] | None = None,
        keep_columns: bool = True,
    ) -> None:
        from ort_core import InferenceSession

        self.session = InferenceSession(
            model,
            providers=list(providers) if providers else None,
            provider_options=list(provider_options) if provider_options else None,
        )
        inputs = [i.name for i in self.session.get_inputs()]
        self.input_columns = {n: (input_columns or {}).get(n, n) for n in inputs}
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.output_columns = {n: (output_columns or {}).get(n, n) for n in self.outputs}
        self.keep_columns = keep_columns

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
        feeds = {}
        for name, column in self.input_columns.items():
            if column not in batch:
                from ort_core.errors import InvalidArgument

                raise InvalidArgument(
                    f"the batch has no column {column!r} for model input {name!r}; its columns "
                    f"are {sorted(batch)} (map them with input_columns=)"
                )
            value = batch[column]
            if isinstance(value, np.ndarray) and value.dtype == object and value.size:
                value = np.stack(list(value))  # a column of per-row arrays
            feeds[name] = np.asarray(value)
        values = self.session.run(None, feeds)
        out = {k: np.asarray(v) for k, v in batch.items()} if self.keep_columns else {}
        for name, value in zip(self.outputs, values):
            out[self.output_columns[name]] = np.asarray(value)
        return out


def map_batches(
    dataset: Any,
    model: str | Path | bytes,
    *,
    providers: Sequence[Any] | None = None,
    provider_options: Sequence[dict] | None = None,
    input_columns: Mapping[str, str] | None = None,
    output_columns: Mapping[str, str] | None = None,
    keep_columns: bool = True,
    batch_size: int = 256,
    concurrency: int | tuple[int, int] = 1,
    num_gpus: float | None = None,
    **map_batches_kwargs: Any,
) -> Any:
    """``dataset.map_batches`` with :class:`OrtBatchPredictor` workers (an actor pool of
    ``concurrency`` workers, each with its own session).

    ``num_gpus`` defaults to 1 per worker when a CUDA provider is requested, else 0; other
    keyword arguments go to ``Dataset.map_batches`` unchanged.
    """
    if isinstance(model, Path):
        model = str(model)
    if num_gpus is None:
        num_gpus = 1 if providers and any(_is_cuda(p) for p in providers) else 0
    kwargs = dict(map_batches_kwargs)
    if num_gpus:
        kwargs["num_gpus"] = num_gpus
    ray_data = require("ray.data", "ort-core's Ray Data batch inference")
    size = concurrency if isinstance(concurrency, tuple) else (concurrency, concurrency)
    return dataset.map_batches(
        OrtBatchPredictor,
        compute=ray_data.ActorPoolStrategy(min_size=size[0], max_size=size[1]),
        fn_constructor_kwargs={
            "model": model,
            "providers": list(providers) if providers else None,
            "provider_options": list(provider_options) if provider_options else None,
            "input_columns": dict(input_columns) if input_columns else None,
            "output_columns": dict(output_columns) if output_columns else None,
            "keep_columns": keep_columns,
        },
        batch_size=batch_size,
        batch_format="numpy",
        **kwargs,
    )
