"""Calibration: run the float model through ort-core and collect the range of each tensor.

The tensors to calibrate are added to the graph's outputs and the augmented model runs in an
``ort_core.InferenceSession`` (any provider; the CPU provider by default). Four methods, with
onnxruntime's names and defaults:

- ``MinMax``: the smallest and largest value seen (optionally a moving average over batches).
- ``Entropy``: a histogram over [-absmax, absmax] (128 bins by default, widened when a later batch
  goes further) and the clipping threshold whose quantized histogram is closest to the original
  in KL divergence.
- ``Percentile``: a histogram of absolute values (2048 bins) cut at the given percentile
  (99.999 by default), symmetric by default; with ``symmetric`` off, a histogram of the values
  cut at both ends.
- ``Distribution``: a histogram of values (2048 bins); for integer types the range is the
  histogram's extent (onnxruntime uses its mean and deviation only for float8 types).
"""

from __future__ import annotations

import abc
import enum
import json
import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

__all__ = [
    "CalibrationDataReader",
    "Calibrator",
    "create_calibrator",
    "CalibrationMethod",
    "TensorData",
    "TensorsData",
    "collect_ranges",
    "collect_strided",
    "load_tensors_data",
    "save_tensors_data",
]

logger = logging.getLogger(__name__)


class CalibrationMethod(enum.Enum):
    MinMax = 0
    Entropy = 1
    Percentile = 2
    Distribution = 3


class CalibrationDataReader(metaclass=abc.ABCMeta):
    """Feeds calibration batches: ``get_next()`` returns an input dict, or None when done."""

    @abc.abstractmethod
    def get_next(self) -> dict | None:
        """The next ``{input_name: array}`` batch, or None when there are no more."""

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        batch = self.get_next()
        if batch is None:
            raise StopIteration
        return batch

    def set_range(self, start_index: int, end_index: int) -> None:
        raise NotImplementedError(
            f"{type(self).__name__} does not support set_range; implement it to calibrate in chunks"
        )


class TensorData:
    """The calibrated range of one tensor (``lowest``/``highest``), with its histogram if any."""

    __slots__ = ("lowest", "highest", "hist", "hist_edges", "avg", "std")

    def __init__(self, lowest, highest, hist=None, hist_edges=None, avg=None, std=None):
        self.lowest = np.float32(lowest)
        self.highest = np.float32(highest)
        self.hist, self.hist_edges, self.avg, self.std = hist, hist_edges, avg, std

    @property
    def range_value(self) -> tuple[np.float32, np.float32]:
        return self.lowest, self.highest

    def __repr__(self) -> str:
        return f"TensorData(lowest={self.lowest}, highest={self.highest})"


class TensorsData(dict):
    """Calibrated ranges by tensor name, with the method that produced them."""

    def __init__(self, calibration_method: CalibrationMethod, data: dict[str, TensorData]):
        super().__init__(data)
        self.calibration_method = calibration_method
        #: the SmoothQuant settings of a cache file's ranges (False: calibrated without)
        self.smooth_quant: bool | dict = False


# -- collectors ------------------------------------------------------------------------------


class _MinMax:
    """Each batch's smallest and largest value per tensor, reduced as onnxruntime's MinMax
    calibrator does: over the batches of one ``collect_data`` call, their minimum and maximum
    (with ``moving_average``, their means); that range made symmetric if asked, then merged with
    the earlier calls' range (min and max, or ``old + c * (new - old)`` with ``moving_average``).
    Only running sums are kept, so memory does not grow with the number of batches."""

    def __init__(self, symmetric=False, moving_average=False, averaging_constant=0.01):
        if moving_average and not 0.0 <= averaging_constant <= 1.0:
            raise ValueError(
                f"CalibMovingAverageConstant must be in [0, 1], got {averaging_constant}"
            )
        self.symmetric, self.moving_average, self.c = symmetric, moving_average, averaging_constant
        self.ranges: dict[str, list[float]] = {}
        # this call's batches: name -> [min or sum of minima, max or sum of maxima, counts]
        self.call: dict[str, list] = {}

    def collect(self, name: str, arr: np.ndarray) -> None:
        lo, hi = (float(np.min(arr)), float(np.max(arr))) if arr.size else (0.0, 0.0)
        entry = self.call.get(name)
        if self.moving_average:  # NaN batches are left out of the means (numpy's nanmean)
            if entry is None:
                entry = self.call[name] = [0.0, 0.0, 0, 0]
            for k, v in enumerate((lo, hi)):
                if not np.isnan(v):
                    entry[k] += v
                    entry[k + 2] += 1
        elif entry is None:
            self.call[name] = [lo, hi]
        else:
            entry[0], entry[1] = float(np.fmin(entry[0], lo)), float(np.fmax(entry[1], hi))

    def end_call(self) -> None:
        """Merge the batches of the ``collect_data`` call that ends into the ranges."""
        for name, entry in self.call.items():
            lo, hi = entry[:2]
            if self.moving_average:
                lo = lo / entry[2] if entry[2] else float("nan")
                hi = hi / entry[3] if entry[3] else float("nan")
            if self.symmetric:
                m = float(np.fmax(abs(lo), abs(hi)))
                lo, hi = -m, m
            r = self.ranges.get(name)
            if r is None:
                self.ranges[name] = [lo, hi]
            elif self.moving_average:
                r[0] += self.c * (lo - r[0])
                r[1] += self.c * (hi - r[1])
            else:
                r[0], r[1] = float(np.fmin(r[0], lo)), float(np.fmax(r[1], hi))
        self.call.clear()

    def compute(self) -> dict[str, TensorData]:
        self.end_call()
        return {name: TensorData(lo, hi) for name, (lo, hi) in self.ranges.items()}


class _Histogram:
    """Histograms over [-threshold, threshold] of values (entropy, distribution, asymmetric
    percentile), widened by whole bins as data grows; or, as onnxruntime's percentile calibrator
    keeps them, of absolute values (symmetric percentile): the first call's histogram spans its
    batches' smallest to largest absolute value, and a later call with a larger one appends
    bins of the same width (values below the first edge are not counted, as there)."""

    def __init__(self, method: CalibrationMethod, num_bins: int, absolute: bool):
        self.method, self.num_bins, self.absolute = method, num_bins, absolute
        # name -> [hist, threshold (values) or edges (absolute values), min, max]
        self.hists: dict[str, list[Any]] = {}
        self.pending: dict[str, list[np.ndarray]] = {}  # absolute: this call's batches

    def collect(self, name: str, arr: np.ndarray) -> None:
        arr = np.asarray(arr, dtype=np.float32).ravel()
        arr = arr[np.isfinite(arr)]
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        if self.absolute:  # merged when the call ends (end_call)
            self.pending.setdefault(name, []).append(arr)
            return
        data = arr
        thr = max(abs(lo), abs(hi))
        entry = self.hists.get(name)
        if entry is None:
            hist = self._hist(data, self.num_bins, thr)
            self.hists[name] = [hist, thr, lo, hi]
            return
        old, old_thr, old_lo, old_hi = entry
        if thr <= old_thr:
            entry[0] = old + self._hist(data, old.size, old_thr)
        elif old_thr == 0:
            entry[0] = self._hist(data, old.size, thr) + old
            entry[1] = thr
        else:
            # widen by whole bins of the old width so the old counts stay aligned
            width = 2 * old_thr / old.size
            extra = int((thr - old_thr) // width + 1)
            n = old.size + 2 * extra
            new_thr = old_thr + extra * width
            hist = self._hist(data, n, new_thr)
            hist[extra : n - extra] += old
            entry[0], entry[1] = hist, new_thr
        entry[2], entry[3] = min(old_lo, lo), max(old_hi, hi)

    def _collect_absolute(self, name: str, data: np.ndarray, lo: float, hi: float) -> None:
        entry = self.hists.get(name)
        if entry is None:
            hist, edges = np.histogram(data, self.num_bins)
            self.hists[name] = [hist.astype(np.int64), edges.astype(np.float32), lo, hi]
            return
        old, edges = entry[0], entry[1]
        if data.size and data.max() > edges[-1]:
            width = edges[1] - edges[0]
            more = np.arange(edges[-1] + width, data.max() + width, width, dtype=np.float32)
            edges = np.hstack((edges, more))
        hist = np.histogram(data, edges)[0].astype(np.int64)
        hist[: old.size] += old
        entry[0], entry[1] = hist, edges
        entry[2], entry[3] = min(entry[2], lo), max(entry[3], hi)

    def end_call(self) -> None:
        """Absolute values: one histogram of all the call's batches together, merged into the
        tensor's (onnxruntime's calibrator histograms each ``collect_data`` call's outputs as
        one array); values: nothing to do, each batch was merged as it came."""
        for name, arrays in self.pending.items():
            arr = np.concatenate(arrays)
            lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
            self._collect_absolute(name, np.abs(arr), lo, hi)
        self.pending.clear()

    def _hist(self, data: np.ndarray, bins: int, thr: float) -> np.ndarray:
        return np.histogram(data, bins, range=(-thr, thr))[0].astype(np.int64)

    def edges(self, hist: np.ndarray, thr) -> np.ndarray:
        if self.absolute:
            return np.asarray(thr, np.float64)  # kept with the histogram
        return np.linspace(-thr, thr, hist.size + 1, dtype=np.float64)


def _kl_threshold(hist: np.ndarray, edges: np.ndarray, num_quantized_bins: int) -> tuple:
    """The symmetric clipping range whose quantization loses least information (KL divergence
    between the clipped histogram and its num_quantized_bins-level quantization)."""
    n = hist.size
    zero = n // 2
    half_q = num_quantized_bins // 2
    best, best_kl = (edges[0], edges[-1]), np.inf
    for i in range(half_q, zero + 1):
        start, end = zero - i, min(zero + i + 1, n)
        sliced = hist[start:end].astype(np.float64)
        p = sliced.copy()
        p[0] += hist[:start].sum()
        p[-1] += hist[end:].sum()
        nonzero = p != 0
        merged = sliced.size // num_quantized_bins
        usable = merged * num_quantized_bins
        sums = sliced[:usable].reshape(num_quantized_bins, merged).sum(axis=1)
        sums[-1] += sliced[usable:].sum()
        counts = nonzero[:usable].reshape(num_quantized_bins, merged).sum(axis=1)
        counts[-1] += nonzero[usable:].sum()
        per = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
        q = np.repeat(per, merged)
        if usable < sliced.size:
            q = np.concatenate([q, np.full(sliced.size - usable, per[-1])])
        q = np.where(nonzero, q, 0.0)
        kl = _kl(p, q)
        if kl < best_kl:
            best_kl, best = kl, (edges[start], edges[end])
    return best


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    eps = 1e-4
    p = p / p.sum() if p.sum() else p
    q = q / q.sum() if q.sum() else q
    pz, qz = p == 0, q == 0
    # move a little mass onto empty bins so the divergence stays finite
    p = p + eps * pz - (eps * pz.sum() / max(p.size - pz.sum(), 1)) * ~pz
    q = q + eps * qz - (eps * qz.sum() / max(q.size - qz.sum(), 1)) * ~qz
    p, q = np.clip(p, 1e-12, None), np.clip(q, 1e-12, None)
    return float(np.sum(p * np.log(p / q)))


def _compute_histogram_ranges(
    col: _Histogram, method: CalibrationMethod, opts: dict
) -> dict[str, TensorData]:
    out = {}
    for name, (hist, thr, lo, hi) in col.hists.items():
        edges = col.edges(hist, thr)
        if method is CalibrationMethod.Entropy:
            a, b = _kl_threshold(hist, edges, opts["num_quantized_bins"])
        elif method is CalibrationMethod.Percentile:
            total = hist.sum()
            cdf = np.cumsum(hist / total) if total else np.ones(hist.size)

            def at(q: float, edges=edges, cdf=cdf) -> float:
                return float(edges[min(int(np.searchsorted(cdf, q)), edges.size - 1)])

            if col.absolute:  # symmetric: the percentile of absolute values
                t = at(opts["percentile"] / 100.0)
                a, b = -t, t
            else:  # the values cut at both ends, half the rest each
                side = (100.0 - opts["percentile"]) / 200.0
                a, b = at(side), at(1.0 - side)
            a, b = max(a, lo), min(b, hi)
        else:  # Distribution: the histogram's extent
            centers = (edges[:-1] + edges[1:]) / 2
            total = max(hist.sum(), 1)
            avg = float((hist * centers).sum() / total)
            std = float(np.sqrt((hist * (centers - avg) ** 2).sum() / total))
            out[name] = TensorData(lo, hi, hist=hist, hist_edges=edges, avg=avg, std=std)
            continue
        if method is CalibrationMethod.Entropy:
            if opts.get("symmetric"):
                m = max(abs(a), abs(b))
                a, b = -m, m
            else:  # never wider than the data (a Relu output keeps its zero floor)
                a, b = max(a, lo), min(b, hi)
        out[name] = TensorData(a, b, hist=hist, hist_edges=edges)
    return out


# -- running the augmented model -------------------------------------------------------------


def _augment(model: onnx.ModelProto, names: Sequence[str]) -> onnx.ModelProto:
    aug = onnx.ModelProto()
    aug.CopyFrom(model)
    present = {o.name for o in aug.graph.output}
    for name in names:
        if name not in present:
            aug.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    return aug


class Calibrator:
    """Collects tensor statistics over any number of ``collect_data`` calls (onnxruntime's
    calibrator protocol) and turns them into ranges with ``compute_data``.

    ``extra_options`` takes onnxruntime's calibrator option names: ``symmetric``,
    ``moving_average``, ``averaging_constant``, ``num_bins``, ``num_quantized_bins``,
    ``percentile``, ``max_intermediate_outputs`` (the number of batches run between reductions of
    the collected statistics; statistics are reduced after every batch here, so any value >= 1
    bounds memory).

    As in onnxruntime, MinMax with ``moving_average`` averages the batches of each
    ``collect_data`` call and merges calls as a moving average, so where the calls split the
    batches (see :func:`collect_strided`) changes the range.
    """

    def __init__(
        self,
        model: onnx.ModelProto,
        tensors: Iterable[str],
        method: CalibrationMethod = CalibrationMethod.MinMax,
        providers: Sequence[Any] | None = None,
        extra_options: dict | None = None,
    ):
        if not isinstance(method, CalibrationMethod):
            raise TypeError(f"calibrate_method must be a CalibrationMethod, got {method!r}")
        opts = dict(extra_options or {})
        mio = opts.get("max_intermediate_outputs")
        if mio is not None and (not isinstance(mio, int) or mio < 1):
            raise ValueError(f"CalibMaxIntermediateOutputs must be a positive integer, got {mio!r}")
        if method is CalibrationMethod.MinMax:
            self.collector: Any = _MinMax(
                bool(opts.get("symmetric", False)),
                bool(opts.get("moving_average", False)),
                float(opts.get("averaging_constant", 0.01)),
            )
        elif method is CalibrationMethod.Entropy:
            opts.setdefault("num_quantized_bins", 128)
            opts.setdefault("symmetric", False)
            self.collector = _Histogram(method, int(opts.get("num_bins", 128)), absolute=False)
        elif method is CalibrationMethod.Percentile:
            pct = float(opts.get("percentile", 99.999))
            if not 0.0 <= pct <= 100.0:
                raise ValueError(f"CalibPercentile must be in [0, 100], got {pct}")
            opts["percentile"] = pct
            opts.setdefault("symmetric", True)
            self.collector = _Histogram(
                method, int(opts.get("num_bins", 2048)), absolute=bool(opts["symmetric"])
            )
        else:
            nb = int(opts.get("num_bins", 2048))
            if nb < 512:
                raise ValueError(f"Distribution calibration needs num_bins >= 512, got {nb}")
            self.collector = _Histogram(method, nb, absolute=False)
        self.method, self.opts = method, opts
        self.model = _augment(model, list(dict.fromkeys(tensors)))
        self.names = {o.name for o in self.model.graph.output}
        self.providers = list(providers or ["CPUExecutionProvider"])
        self._sess = None
        self.batches = 0

    def get_augment_model(self) -> onnx.ModelProto:
        """The model with the calibrated tensors added as outputs."""
        return self.model

    def collect_data(self, data_reader: CalibrationDataReader | Iterable[dict]) -> None:
        """Run every batch of ``data_reader`` and add its statistics."""
        from ort_core import InferenceSession

        if self._sess is None:
            self._sess = InferenceSession(self.model.SerializeToString(), providers=self.providers)
        wanted = [o.name for o in self._sess.get_outputs() if o.name in self.names]
        for feed in _batches(data_reader):
            if not isinstance(feed, dict):
                raise TypeError(
                    f"the calibration data reader must yield dicts of input name -> array, got "
                    f"{type(feed).__name__}"
                )
            for name, value in zip(wanted, self._sess.run(wanted, feed)):
                self.collector.collect(name, np.asarray(value, dtype=np.float32))
            self.batches += 1
        self.collector.end_call()

    def compute_data(self) -> TensorsData:
        """The calibrated range of each tensor."""
        if self.batches == 0:
            raise ValueError(
                "the calibration data reader gave no batches; it must yield at least one"
            )
        logger.info("calibrated on %d batches with %s", self.batches, self.method.name)
        if self.method is CalibrationMethod.MinMax:
            return TensorsData(self.method, self.collector.compute())
        return TensorsData(
            self.method, _compute_histogram_ranges(self.collector, self.method, self.opts)
        )


def create_calibrator(
    model: str | os.PathLike | onnx.ModelProto,
    op_types_to_calibrate: Sequence[str] | None = None,
    augmented_model_path: str | os.PathLike = "augmented_model.onnx",
    calibrate_method: CalibrationMethod = CalibrationMethod.MinMax,
    use_external_data_format: bool = False,
    providers: Sequence[Any] | None = None,
    extra_options: dict | None = None,
) -> Calibrator:
    """A calibrator over the float tensors that nodes of ``op_types_to_calibrate`` (all nodes
    when None) read or write; the augmented model is saved to ``augmented_model_path``."""
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(os.fspath(model))
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:
        inferred = model
    g = inferred.graph
    types = {
        vi.name: vi.type.tensor_type.elem_type
        for vi in [*g.input, *g.output, *g.value_info]
        if vi.type.HasField("tensor_type")
    }
    inits = {i.name for i in g.initializer}
    ops = set(op_types_to_calibrate or [])
    names = [
        t
        for n in g.node
        if not ops or n.op_type in ops
        for t in [*n.input, *n.output]
        if t and t not in inits and types.get(t) == TensorProto.FLOAT
    ]
    cal = Calibrator(model, names, calibrate_method, providers, extra_options)
    if use_external_data_format:
        onnx.save_model(
            cal.model,
            os.fspath(augmented_model_path),
            save_as_external_data=True,
            location=os.path.basename(os.fspath(augmented_model_path)) + ".data",
        )
    else:
        onnx.save_model(cal.model, os.fspath(augmented_model_path))
    return cal


def collect_ranges(
    model: onnx.ModelProto,
    tensors: Iterable[str],
    data_reader: CalibrationDataReader | Iterable[dict],
    method: CalibrationMethod = CalibrationMethod.MinMax,
    providers: Sequence[Any] | None = None,
    extra_options: dict | None = None,
    stride: int | None = None,
) -> TensorsData:
    """Run ``data_reader``'s batches through ort-core with ``tensors`` exposed as outputs and
    return each tensor's calibrated range (see :class:`Calibrator` for ``extra_options``).
    ``stride``: read the batches ``stride`` at a time (see :func:`collect_strided`)."""
    cal = Calibrator(model, tensors, method, providers, extra_options)
    if stride:
        collect_strided(cal, data_reader, stride)
    else:
        cal.collect_data(data_reader)
    return cal.compute_data()


def strided_reader_length(reader: Any, stride: int) -> int:
    """The number of batches ``reader`` holds, checked for ``CalibStridedMinMax``: the reader
    must have ``__len__`` and ``set_range`` and hold a whole number of strides."""
    missing = [m for m in ("__len__", "set_range") if not callable(getattr(reader, m, None))]
    if missing:
        raise ValueError(
            f"extra_options['CalibStridedMinMax']={stride} reads the calibration data in strides: "
            f"the reader needs __len__ (the number of batches) and set_range(start_index, "
            f"end_index); {type(reader).__name__} lacks {' and '.join(missing)}"
        )
    total = len(reader)
    if total % stride:
        raise ValueError(
            f"extra_options['CalibStridedMinMax']={stride}: the reader's {total} batches are not a "
            "whole number of strides; pass a stride that divides the number of batches"
        )
    return total


def collect_strided(cal: Calibrator, reader: Any, stride: int) -> None:
    """``CalibStridedMinMax``: ``reader.set_range(start, start + stride)`` and one
    ``collect_data`` call per stride, as onnxruntime's quantize_static does, so the reader only
    has to hold ``stride`` batches at a time and each stride is reduced before the next is
    read. MinMax ranges are the same as in one pass, except with ``CalibMovingAverage`` (a mean
    per stride, merged across strides as a moving average, as in onnxruntime)."""
    total = strided_reader_length(reader, stride)
    for start in range(0, total, stride):
        reader.set_range(start_index=start, end_index=start + stride)
        cal.collect_data(reader)


def _batches(reader: Any):
    """The reader's batches: ``get_next()`` until None (onnxruntime's protocol), else iteration."""
    if hasattr(reader, "get_next"):
        while (batch := reader.get_next()) is not None:
            yield batch
    elif isinstance(reader, Iterable):
        yield from reader
    else:
        raise TypeError(
            "calibration_data_reader must have get_next() (a CalibrationDataReader) or be an "
            f"iterable of input dicts, got {type(reader).__name__}"
        )


def save_tensors_data(
    tensors_data: TensorsData, path: str | os.PathLike, *, smooth_quant: bool | dict = False
) -> None:
    """Write calibrated ranges as JSON (ort-core's format: method, and lowest/highest per
    tensor; onnxruntime's cache files are not read). ``smooth_quant``: the SmoothQuant settings
    the ranges were calibrated after (False for none); a run with other settings recalibrates."""
    payload = {
        "format": "ort_core.calibration/1",
        "calibration_method": tensors_data.calibration_method.name,
        "data": {k: [float(v.lowest), float(v.highest)] for k, v in tensors_data.items()},
    }
    if smooth_quant:
        payload["smooth_quant"] = smooth_quant
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f)
    os.replace(tmp, path)


def load_tensors_data(path: str | os.PathLike) -> TensorsData:
    """Read ranges written by :func:`save_tensors_data`."""
    with open(path, encoding="utf-8") as f:
        payload = json.load(f)
    if not isinstance(payload, dict) or payload.get("format") != "ort_core.calibration/1":
        raise ValueError(
            f"{os.fspath(path)!r} is not an ort-core calibration cache; delete it (onnxruntime's "
            "cache files are not read) and calibrate again"
        )
    method = CalibrationMethod[payload["calibration_method"]]
    data = TensorsData(method, {k: TensorData(lo, hi) for k, (lo, hi) in payload["data"].items()})
    data.smooth_quant = payload.get("smooth_quant", False)
    return data
