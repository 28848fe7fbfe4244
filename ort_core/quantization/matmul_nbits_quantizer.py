"""Weight-only block quantization of MatMul to com.microsoft MatMulNBits (4 or 8 bits).

The names follow ``onnxruntime.quantization.matmul_nbits_quantizer``::

    quant = MatMulNBitsQuantizer(model, block_size=32, is_symmetric=True, accuracy_level=4)
    quant.process()
    quant.model.save_model_to_file("model_int4.onnx")

Each MatMul whose B is a 2-D float initializer [K, N] becomes ``MatMulNBits(A, B_q, scales[,
zero_points])``: B is split along K into blocks of ``block_size``; each block of each column has
a float scale (and, when asymmetric, a packed zero point). Symmetric blocks map the value of
largest magnitude to -2**(bits-1) (zero point 2**(bits-1), not stored); asymmetric blocks span
[min(block, 0), max(block, 0)].
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ._graph import MS_DOMAIN, ensure_domain
from .quant_utils import QuantFormat

__all__ = [
    "DefaultWeightOnlyQuantConfig",
    "GPTQWeightOnlyQuantConfig",
    "HQQWeightOnlyQuantConfig",
    "MatMulNBitsQuantizer",
    "WeightOnlyQuantConfig",
    "quantize_blockwise",
    "quantize_gptq",
    "quantize_hqq",
]

logger = logging.getLogger(__name__)


class WeightOnlyQuantConfig:
    """Base of the weight-only configurations (onnxruntime's name)."""

    def __init__(
        self,
        algorithm: str,
        quant_format=QuantFormat.QOperator,
        op_types_to_quantize: tuple[str, ...] | None = None,
        quant_axes: tuple[tuple[str, int], ...] | None = None,
        customized_weight_config: dict | None = None,
    ):
        if quant_format is not QuantFormat.QOperator:
            raise ValueError(
                "ort_core writes weight-only quantization as MatMulNBits (QuantFormat.QOperator); "
                "QDQ block quantization is not supported"
            )
        ops = tuple(op_types_to_quantize or ("MatMul",))
        if set(ops) - {"MatMul"}:
            raise ValueError(f"op_types_to_quantize may only contain 'MatMul', got {ops}")
        for op, axis in quant_axes or ():
            if (op, axis) != ("MatMul", 0):
                raise ValueError(f"quant_axes supports ('MatMul', 0) only, got {(op, axis)}")
        if customized_weight_config:
            raise ValueError("customized_weight_config is not supported by ort_core.quantization")
        self.algorithm = algorithm
        self.quant_format = quant_format
        self.op_types_to_quantize = ops


class DefaultWeightOnlyQuantConfig(WeightOnlyQuantConfig):
    """Round-to-nearest block quantization (onnxruntime's "DEFAULT" algorithm)."""

    def __init__(
        self,
        block_size: int = 128,
        is_symmetric: bool = False,
        accuracy_level: int | None = None,
        quant_format=QuantFormat.QOperator,
        op_types_to_quantize: tuple[str, ...] | None = None,
        quant_axes: tuple[tuple[str, int], ...] | None = None,
        bits: int = 4,
        channel_wised_quantize: bool = False,
    ):
        super().__init__("DEFAULT", quant_format, op_types_to_quantize, quant_axes)
        _check(bits, block_size, accuracy_level)
        self.block_size = block_size
        self.is_symmetric = is_symmetric
        self.accuracy_level = accuracy_level
        self.bits = bits
        self.channel_wised_quantize = channel_wised_quantize


class HQQWeightOnlyQuantConfig(WeightOnlyQuantConfig):
    """Half-quadratic quantization (onnxruntime's "HQQ"): per block of ``block_size`` input
    channels, a min/max scale and a float zero point refined to minimise the l_0.7 error of
    the dequantized weights (see :func:`quantize_hqq`). No calibration data. numpy only
    (onnxruntime's needs torch)."""

    def __init__(
        self,
        block_size: int = 128,
        bits: int = 4,
        axis: int = 1,
        quant_format=QuantFormat.QOperator,
        op_types_to_quantize: tuple[str, ...] | None = None,
        quant_axes: tuple[tuple[str, int], ...] | None = None,
    ):
        super().__init__("HQQ", quant_format, op_types_to_quantize, quant_axes)
        _check(bits, block_size, None)
        if axis != 1:
            raise ValueError(
                f"HQQ axis={axis} is not supported; MatMulNBits groups the weight along its "
                "input channels, which is axis 1 of the transposed weight HQQ works on"
            )
        self.block_size = block_size
        self.bits = bits
        self.axis = axis


class GPTQWeightOnlyQuantConfig(WeightOnlyQuantConfig):
    """GPTQ (onnxruntime's "GPTQ"): each weight is quantized input channel by input channel,
    the rounding error compensated on the channels left through the inverse Hessian of the
    MatMul's input (see :func:`quantize_gptq`). The inputs come from running
    ``calibration_data_reader``'s batches through ort-core's own ``InferenceSession``. numpy
    only (onnxruntime's needs neural-compressor).

    As in onnxruntime, the quantization group size, symmetry and bits are the
    ``MatMulNBitsQuantizer``'s ``block_size``/``is_symmetric``/``bits``; this ``block_size`` is
    the number of channels GPTQ updates together.
    """

    def __init__(
        self,
        calibration_data_reader=None,
        percdamp: float = 0.01,
        block_size: int = 128,
        actorder: bool = False,
        mse: bool = False,
        perchannel: bool = True,
        quant_format=QuantFormat.QOperator,
        op_types_to_quantize: tuple[str, ...] | None = None,
    ):
        super().__init__("GPTQ", quant_format, op_types_to_quantize)
        if calibration_data_reader is None:
            raise ValueError(
                "GPTQWeightOnlyQuantConfig needs a calibration_data_reader (a "
                "CalibrationDataReader yielding input dicts) to measure the MatMul inputs"
            )
        if not 0.0 < float(percdamp) < 1.0:
            raise ValueError(f"percdamp must be in (0, 1), got {percdamp}")
        if not isinstance(block_size, int) or block_size < 1:
            raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
        if not perchannel:
            raise ValueError(
                "perchannel=False is not supported: MatMulNBits keeps a scale per block of "
                "each output channel"
            )
        self.calibration_data_reader = calibration_data_reader
        self.percdamp = float(percdamp)
        self.block_size = block_size
        self.actorder = bool(actorder)
        self.mse = bool(mse)
        self.perchannel = True


def _check(bits: int, block_size: int, accuracy_level: int | None) -> None:
    if bits not in (4, 8):
        raise ValueError(f"bits must be 4 or 8, got {bits}")
    if block_size < 16 or block_size & (block_size - 1):
        raise ValueError(f"block_size must be a power of two >= 16, got {block_size}")
    if accuracy_level is not None and accuracy_level not in (0, 1, 2, 3, 4):
        raise ValueError(f"accuracy_level must be 0..4 (or None), got {accuracy_level}")


def block_params(
    blocks: np.ndarray, bits: int, symmetric: bool, shrink: float | np.ndarray = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """(scale, integer zero point) of each block along the last axis of ``blocks``.

    Symmetric blocks map the value of largest magnitude to -2**(bits-1) (zero point
    2**(bits-1)); asymmetric ones span [min(block, 0), max(block, 0)] over 0..2**bits-1.
    ``shrink`` (<= 1, broadcast against the block shape without its last axis) narrows the
    range first (GPTQ's mse search).
    """
    levels, mid = 2**bits - 1, 2 ** (bits - 1)
    if symmetric:
        idx = np.abs(blocks).argmax(axis=-1)
        extreme = np.take_along_axis(blocks, idx[..., None], axis=-1)[..., 0] * shrink
        return extreme / -mid, np.full(extreme.shape, mid, np.int64)
    lo = np.minimum(blocks.min(axis=-1), 0.0) * shrink
    hi = np.maximum(blocks.max(axis=-1), 0.0) * shrink
    scale = (hi - lo) / levels
    safe = np.where(scale == 0, 1.0, scale)
    return scale, np.clip(np.round(-lo / safe), 0, levels).astype(np.int64)


def _round_to_grid(x: np.ndarray, scale: np.ndarray, zp: np.ndarray, bits: int) -> np.ndarray:
    """Integer codes of ``x`` on the grid (scale, zp), broadcast along the last axis."""
    safe = np.where(scale == 0, 1.0, scale)
    return np.clip(np.round(x / safe[..., None]) + zp[..., None], 0, 2**bits - 1)


def _pad_blocks(w: np.ndarray, block_size: int) -> np.ndarray:
    """B [K, N] as [N, k_blocks, block_size], K zero-padded to whole blocks."""
    k, n = w.shape
    kb = -(-k // block_size)
    wt = np.zeros((n, kb * block_size), np.float32)
    wt[:, :k] = w.T
    return wt.reshape(n, kb, block_size)


def pack_blocks(
    q: np.ndarray, zp: np.ndarray | None, bits: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """MatMulNBits' layout of codes [N, k_blocks, block_size] and integer zero points
    [N, k_blocks]: (packed [N, k_blocks, block_size * bits / 8] uint8, packed zero points
    [N, ceil(k_blocks * bits / 8)] uint8 or None)."""
    q = q.astype(np.uint8)
    packed = (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8) if bits == 4 else q
    if zp is None:
        return packed, None
    zz = zp.astype(np.uint8)
    if bits == 8:
        return packed, zz
    if zz.shape[1] % 2:
        zz = np.concatenate([zz, np.zeros((zz.shape[0], 1), np.uint8)], axis=1)
    return packed, (zz[:, 0::2] | (zz[:, 1::2] << 4)).astype(np.uint8)


def quantize_blockwise(
    w: np.ndarray, bits: int, block_size: int, symmetric: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Quantize B [K, N] in blocks along K, rounding to nearest.

    Returns (packed [N, k_blocks, block_size * bits / 8] uint8, scales [N, k_blocks] float32,
    packed zero points [N, ceil(k_blocks * bits / 8)] uint8 or None when symmetric).
    """
    blocks = _pad_blocks(w, block_size)
    scale, zp = block_params(blocks, bits, symmetric)
    q = _round_to_grid(blocks, scale.astype(np.float32), zp, bits)
    packed, zps = pack_blocks(q, None if symmetric else zp, bits)
    return packed, scale.astype(np.float32), zps


def quantize_hqq(
    w: np.ndarray, bits: int, block_size: int, iters: int = 20
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half-quadratic quantization of B [K, N] in blocks along K (Badri & Shaji, 2023).

    Each block starts from its min/max grid; then, with the scale fixed, the zero point is
    refined by alternating a sparsity-promoting shrinkage of the residual W - dequant(W)
    (the proximal step of an l_p norm, p = 0.7) and the closed-form zero point that best
    explains the weights without the shrunk residual, the penalty growing each round; the
    zero point with the smallest mean absolute error is kept. The zero point is a float.

    Returns (packed codes [N, k_blocks, block_size * bits / 8] uint8, scales [N, k_blocks]
    float32, zero points [N * k_blocks] float32).
    """
    p, beta, kappa = 0.7, 10.0, 1.01
    levels = 2**bits - 1
    blocks = _pad_blocks(w, block_size).astype(np.float64)
    lo, hi = blocks.min(axis=-1, keepdims=True), blocks.max(axis=-1, keepdims=True)
    span = np.where(hi - lo == 0, levels, hi - lo)
    inv = np.minimum(levels / span, 2e4)  # codes = w * inv + zero
    zero = np.round(-lo * inv)

    def codes(z):
        return np.clip(np.round(blocks * inv + z), 0, levels)

    best_zero, best_err = zero, np.inf
    for _ in range(iters):
        q = codes(zero)
        residual = blocks - (q - zero) / inv
        err = float(np.abs(residual).mean())
        if err >= best_err:
            break
        best_zero, best_err = zero, err
        mag = np.abs(residual)
        shrunk = np.sign(residual) * np.maximum(mag - (mag + 1e-8) ** (p - 1) / beta, 0.0)
        zero = np.mean(q - (blocks - shrunk) * inv, axis=-1, keepdims=True)
        beta *= kappa
    q = codes(best_zero)
    packed, _ = pack_blocks(q, None, bits)
    scale = (1.0 / inv)[..., 0].astype(np.float32)
    return packed, scale, best_zero[..., 0].astype(np.float32).ravel()


def quantize_gptq(
    w: np.ndarray,
    hessian: np.ndarray,
    bits: int,
    group_size: int,
    symmetric: bool,
    percdamp: float = 0.01,
    block_size: int = 128,
    actorder: bool = False,
    mse: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """GPTQ (Frantar et al., 2022) of B [K, N] with the input Hessian ``hessian`` [K, K]
    (2 X^T X / samples of the MatMul's input X [samples, K]).

    Input channels are quantized one at a time (in order of decreasing Hessian diagonal with
    ``actorder``); the error of each is spread over the channels not yet quantized through the
    inverse Hessian's Cholesky factor, updating ``block_size`` channels at a time and the rest
    once per block. Scales and zero points are per group of ``group_size`` input channels,
    taken from the (updated) weights when the group's first channel is reached, or from the
    original weights up front with ``actorder`` (groups must stay contiguous in K for
    MatMulNBits). ``mse`` shrinks each group's range to the factor (0.2..1) with the smallest
    error. Returns what ``quantize_blockwise`` returns.
    """
    k, n = w.shape
    kb = -(-k // group_size)
    kp = kb * group_size
    wt = np.zeros((n, kp), np.float64)
    wt[:, :k] = w.T
    h = np.zeros((kp, kp), np.float64)
    h[:k, :k] = hessian
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    wt[:, dead] = 0.0
    h[np.diag_indices(kp)] += percdamp * np.mean(np.diag(h))
    perm = np.argsort(-np.diag(h), kind="stable") if actorder else np.arange(kp)
    wt, h = wt[:, perm], h[np.ix_(perm, perm)]
    try:
        u = np.linalg.cholesky(np.linalg.inv(h)).T  # upper factor of H^-1
    except np.linalg.LinAlgError as exc:
        raise ValueError(
            f"GPTQ: the Hessian is not positive definite even after dampening ({exc}); "
            "raise percdamp or give more calibration data"
        ) from None

    def params(cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not mse:
            return block_params(cols, bits, symmetric)
        best, best_err = None, np.full(cols.shape[0], np.inf)
        for shrink in np.linspace(1.0, 0.2, 81):
            s, z = block_params(cols, bits, symmetric, shrink)
            q = _round_to_grid(cols, s, z, bits)
            err = (np.abs((q - z[:, None]) * s[:, None] - cols) ** 2.4).sum(axis=1)
            better = err < best_err
            if best is None:
                best = (s.copy(), z.copy())
            best[0][better], best[1][better] = s[better], z[better]
            best_err = np.minimum(err, best_err)
        return best

    scales = np.zeros((n, kb))
    zps = np.zeros((n, kb), np.int64)
    if actorder:  # static groups, from the weights in their original order
        orig = wt[:, np.argsort(perm)].reshape(n, kb, group_size)
        for g in range(kb):
            scales[:, g], zps[:, g] = params(orig[:, g])
    codes = np.zeros((n, kp))
    for i1 in range(0, kp, block_size):
        i2 = min(i1 + block_size, kp)
        w1 = wt[:, i1:i2].copy()
        err1 = np.zeros_like(w1)
        for i in range(i2 - i1):
            col = int(perm[i1 + i])
            g = col // group_size
            if not actorder and col % group_size == 0:
                ahead = np.concatenate([w1[:, i:], wt[:, i2:]], axis=1)[:, :group_size]
                scales[:, g], zps[:, g] = params(ahead)
            s, z = scales[:, g], zps[:, g]
            q = _round_to_grid(w1[:, i : i + 1], s, z, bits)[:, 0]
            codes[:, i1 + i] = q
            e = (w1[:, i] - (q - z) * s) / u[i1 + i, i1 + i]
            w1[:, i:] -= np.outer(e, u[i1 + i, i1 + i : i2])
            err1[:, i] = e
        wt[:, i2:] -= err1 @ u[i1:i2, i2:]
    q = codes[:, np.argsort(perm)].reshape(n, kb, group_size)
    scale = scales.astype(np.float32)
    packed, packed_zp = pack_blocks(q, None if symmetric else zps, bits)
    return packed, scale, packed_zp


class _ModelHolder:
    """The quantized model, with onnxruntime's ``ONNXModel`` methods scripts call."""

    def __init__(self, model: onnx.ModelProto):
        self.model = model

    def save_model_to_file(
        self, output_path: str | Path, use_external_data_format: bool = False
    ) -> None:
        onnx.checker.check_model(self.model)
        if use_external_data_format:
            onnx.save_model(
                self.model,
                str(output_path),
                save_as_external_data=True,
                all_tensors_to_one_file=True,
                location=Path(output_path).name + ".data",
            )
        else:
            onnx.save_model(self.model, str(output_path))


class MatMulNBitsQuantizer:
    """Quantize the weights of MatMul nodes to MatMulNBits (call ``process()``)."""

    def __init__(
        self,
        model: onnx.ModelProto | str,
        bits: int = 4,
        block_size: int = 128,
        is_symmetric: bool = False,
        accuracy_level: int | None = None,
        nodes_to_exclude=None,
        nodes_to_include: list[str] | None = None,
        quant_format=QuantFormat.QOperator,
        op_types_to_quantize: tuple[str, ...] | None = None,
        quant_axes: tuple[tuple[str, int], ...] | None = None,
        channel_wised_quantize: bool = False,
        algo_config: WeightOnlyQuantConfig | None = None,
    ):
        if isinstance(model, (str, os.PathLike)):
            model = onnx.load(str(model))
        if not isinstance(model, onnx.ModelProto):
            raise TypeError(f"model must be a path or ModelProto, got {type(model).__name__}")
        if algo_config is None:
            algo_config = DefaultWeightOnlyQuantConfig(
                block_size, is_symmetric, accuracy_level, quant_format, op_types_to_quantize,
                quant_axes, bits, channel_wised_quantize,
            )  # fmt: skip
        supported = (
            DefaultWeightOnlyQuantConfig,
            HQQWeightOnlyQuantConfig,
            GPTQWeightOnlyQuantConfig,
        )
        if not isinstance(algo_config, supported):
            raise ValueError(
                f"algo_config {type(algo_config).__name__} is not supported; ort_core implements "
                "DefaultWeightOnlyQuantConfig (round to nearest), HQQWeightOnlyQuantConfig and "
                "GPTQWeightOnlyQuantConfig"
            )
        if isinstance(algo_config, GPTQWeightOnlyQuantConfig):
            _check(bits, block_size, accuracy_level)
        self.bits, self.block_size, self.is_symmetric = bits, block_size, is_symmetric
        self.accuracy_level = accuracy_level
        self.algo_config = algo_config
        self.model = _ModelHolder(model)
        self.nodes_to_exclude = set(nodes_to_exclude or [])
        self.nodes_to_include = set(nodes_to_include or [])

    def process(self) -> None:
        cfg = self.algo_config
        model = onnx.ModelProto()
        model.CopyFrom(self.model.model)
        self._hessians = {}
        if isinstance(cfg, GPTQWeightOnlyQuantConfig):
            self._hessians = self._input_hessians(model)
        self._graph(model.graph, cfg)
        ensure_domain(model, MS_DOMAIN)
        self.model = _ModelHolder(model)

    def _targets(self, g: onnx.GraphProto) -> list[int]:
        """Indices of the MatMul nodes of ``g`` this quantizer rewrites (2-D float32 B)."""
        inits = {i.name: i for i in g.initializer}
        out = []
        for idx, n in enumerate(g.node):
            b = inits.get(n.input[1]) if n.op_type == "MatMul" and n.domain == "" else None
            if (
                b is not None
                and b.data_type == TensorProto.FLOAT
                and len(b.dims) == 2
                and n.name not in self.nodes_to_exclude
                and (not self.nodes_to_include or n.name in self.nodes_to_include)
            ):
                out.append(idx)
        return out

    def _input_hessians(self, model: onnx.ModelProto) -> dict[str, np.ndarray]:
        """2 X^T X / samples of the input X [samples, K] of each top-level MatMul to quantize,
        from the calibration batches run through ort-core (MatMuls inside subgraphs keep their
        float weight: their inputs are not graph values the session can return)."""
        from ort_core import InferenceSession

        from .calibrate import _augment, _batches

        g = model.graph
        names = list(dict.fromkeys(g.node[i].input[0] for i in self._targets(g)))
        if not names:
            return {}
        aug = _augment(model, names)
        sess = InferenceSession(aug.SerializeToString(), providers=["CPUExecutionProvider"])
        sums: dict[str, np.ndarray] = {}
        counts: dict[str, int] = dict.fromkeys(names, 0)
        for feed in _batches(self.algo_config.calibration_data_reader):
            if not isinstance(feed, dict):
                raise TypeError(
                    "the calibration data reader must yield dicts of input name -> array, got "
                    f"{type(feed).__name__}"
                )
            for name, value in zip(names, sess.run(names, feed)):
                x = np.asarray(value, np.float64)
                x = x.reshape(-1, x.shape[-1])
                sums[name] = sums.get(name, 0.0) + x.T @ x
                counts[name] += x.shape[0]
        if not sums:
            raise ValueError("the GPTQ calibration data reader gave no batches")
        return {name: 2.0 * sums[name] / counts[name] for name in sums}

    def _graph(self, g: onnx.GraphProto, cfg: WeightOnlyQuantConfig, top: bool = True) -> None:
        inits = {i.name: i for i in g.initializer}
        uses: dict[str, int] = {}
        for n in g.node:
            for i in n.input:
                uses[i] = uses.get(i, 0) + 1
        new_nodes, new_inits, dropped = [], [], set()
        targets = set(self._targets(g))
        for idx, n in enumerate(g.node):
            for a in n.attribute:
                for sub in [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs):
                    self._graph(sub, cfg, top=False)
            if idx not in targets:
                new_nodes.append(n)
                continue
            b = inits[n.input[1]]
            w = numpy_helper.to_array(b)
            k, nn = w.shape
            if isinstance(cfg, GPTQWeightOnlyQuantConfig):
                if not top or n.input[0] not in self._hessians:
                    new_nodes.append(n)  # no calibrated input (see _input_hessians)
                    continue
                bits, block, accuracy = self.bits, self.block_size, self.accuracy_level
                packed, scales, zps = quantize_gptq(
                    w, self._hessians[n.input[0]], bits, block, self.is_symmetric,
                    cfg.percdamp, cfg.block_size, cfg.actorder, cfg.mse,
                )  # fmt: skip
            elif isinstance(cfg, HQQWeightOnlyQuantConfig):
                bits, block, accuracy = cfg.bits, cfg.block_size, self.accuracy_level
                packed, scales, zps = quantize_hqq(w, bits, block)
            else:
                bits, block, accuracy = cfg.bits, cfg.block_size, cfg.accuracy_level
                if cfg.channel_wised_quantize:
                    block = max(16, 1 << (k - 1).bit_length())
                packed, scales, zps = quantize_blockwise(w, bits, block, cfg.is_symmetric)
            base = b.name
            new_inits += [
                numpy_helper.from_array(packed, f"{base}_Q{bits}"),
                numpy_helper.from_array(scales, f"{base}_scales"),
            ]
            ins = [n.input[0], f"{base}_Q{bits}", f"{base}_scales"]
            if zps is not None:
                new_inits.append(numpy_helper.from_array(zps, f"{base}_zero_points"))
                ins.append(f"{base}_zero_points")
            kw: dict[str, Any] = {"K": k, "N": nn, "bits": bits, "block_size": block}
            if accuracy is not None:
                kw["accuracy_level"] = accuracy
            new_nodes.append(
                helper.make_node(
                    "MatMulNBits",
                    ins,
                    list(n.output),
                    n.name or f"{base}_MatMulNBits",
                    domain=MS_DOMAIN,
                    **kw,
                )
            )
            uses[b.name] -= 1
            if uses[b.name] == 0:
                dropped.add(b.name)
        kept = [i for i in g.initializer if i.name not in dropped]
        seen = {i.name for i in kept}
        kept += [i for i in new_inits if i.name not in seen and not seen.add(i.name)]
        del g.initializer[:]
        g.initializer.extend(kept)
        del g.node[:]
        g.node.extend(new_nodes)
