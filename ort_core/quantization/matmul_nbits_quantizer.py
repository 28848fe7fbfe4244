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
    "MatMulNBitsQuantizer",
    "WeightOnlyQuantConfig",
    "quantize_blockwise",
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


def _check(bits: int, block_size: int, accuracy_level: int | None) -> None:
    if bits not in (4, 8):
        raise ValueError(f"bits must be 4 or 8, got {bits}")
    if block_size < 16 or block_size & (block_size - 1):
        raise ValueError(f"block_size must be a power of two >= 16, got {block_size}")
    if accuracy_level is not None and accuracy_level not in (0, 1, 2, 3, 4):
        raise ValueError(f"accuracy_level must be 0..4 (or None), got {accuracy_level}")


def quantize_blockwise(
    w: np.ndarray, bits: int, block_size: int, symmetric: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Quantize B [K, N] in blocks along K.

    Returns (packed [N, k_blocks, block_size * bits / 8] uint8, scales [N, k_blocks] float32,
    packed zero points [N, ceil(k_blocks * bits / 8)] uint8 or None when symmetric).
    """
    k, n = w.shape
    kb = -(-k // block_size)
    wt = np.zeros((n, kb * block_size), np.float32)
    wt[:, :k] = w.T
    blocks = wt.reshape(n, kb, block_size)
    levels = 2**bits - 1
    mid = 2 ** (bits - 1)
    if symmetric:
        idx = np.abs(blocks).argmax(axis=2)
        extreme = np.take_along_axis(blocks, idx[..., None], axis=2)[..., 0]
        scale = extreme / -mid
        zp = np.full(scale.shape, mid, np.int64)
    else:
        lo = np.minimum(blocks.min(axis=2), 0.0)
        hi = np.maximum(blocks.max(axis=2), 0.0)
        scale = (hi - lo) / levels
        safe = np.where(scale == 0, 1.0, scale)
        zp = np.clip(np.round(-lo / safe), 0, levels).astype(np.int64)
    safe = np.where(scale == 0, 1.0, scale).astype(np.float32)
    q = np.clip(np.round(blocks / safe[..., None]) + zp[..., None], 0, levels).astype(np.uint8)
    scale = scale.astype(np.float32)
    if bits == 4:
        packed = (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)
    else:
        packed = q
    zps = None
    if not symmetric:
        if bits == 4:
            zz = zp.astype(np.uint8)
            if kb % 2:
                zz = np.concatenate([zz, np.zeros((n, 1), np.uint8)], axis=1)
            zps = (zz[:, 0::2] | (zz[:, 1::2] << 4)).astype(np.uint8)
        else:
            zps = zp.astype(np.uint8)
    return packed, scale, zps


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
        if not isinstance(algo_config, DefaultWeightOnlyQuantConfig):
            raise ValueError(
                f"algo_config {type(algo_config).__name__} is not supported; ort_core implements "
                "DefaultWeightOnlyQuantConfig (round to nearest)"
            )
        self.algo_config = algo_config
        self.model = _ModelHolder(model)
        self.nodes_to_exclude = set(nodes_to_exclude or [])
        self.nodes_to_include = set(nodes_to_include or [])

    def process(self) -> None:
        cfg = self.algo_config
        model = onnx.ModelProto()
        model.CopyFrom(self.model.model)
        self._graph(model.graph, cfg)
        ensure_domain(model, MS_DOMAIN)
        self.model = _ModelHolder(model)

    def _graph(self, g: onnx.GraphProto, cfg: DefaultWeightOnlyQuantConfig) -> None:
        inits = {i.name: i for i in g.initializer}
        uses: dict[str, int] = {}
        for n in g.node:
            for i in n.input:
                uses[i] = uses.get(i, 0) + 1
        new_nodes, new_inits, dropped = [], [], set()
        for n in g.node:
            for a in n.attribute:
                for sub in [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs):
                    self._graph(sub, cfg)
            b = inits.get(n.input[1]) if n.op_type == "MatMul" and n.domain == "" else None
            if (
                b is None
                or b.data_type != TensorProto.FLOAT
                or len(b.dims) != 2
                or n.name in self.nodes_to_exclude
                or (self.nodes_to_include and n.name not in self.nodes_to_include)
            ):
                new_nodes.append(n)
                continue
            w = numpy_helper.to_array(b)
            k, nn = w.shape
            block = k if cfg.channel_wised_quantize else cfg.block_size
            if cfg.channel_wised_quantize:
                block = max(16, 1 << (k - 1).bit_length())
            packed, scales, zps = quantize_blockwise(w, cfg.bits, block, cfg.is_symmetric)
            base = b.name
            new_inits += [
                numpy_helper.from_array(packed, f"{base}_Q{cfg.bits}"),
                numpy_helper.from_array(scales, f"{base}_scales"),
            ]
            ins = [n.input[0], f"{base}_Q{cfg.bits}", f"{base}_scales"]
            if zps is not None:
                new_inits.append(numpy_helper.from_array(zps, f"{base}_zero_points"))
                ins.append(f"{base}_zero_points")
            kw: dict[str, Any] = {"K": k, "N": nn, "bits": cfg.bits, "block_size": block}
            if cfg.accuracy_level is not None:
                kw["accuracy_level"] = cfg.accuracy_level
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
