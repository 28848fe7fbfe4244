"""``extra_options["TensorQuantOverrides"]``: per-tensor quantization settings, checked up front.

The value maps a tensor name to a list of dicts, as in onnxruntime. One dict quantizes the tensor
per tensor; a dict with ``axis`` (followed by one dict per channel, or alone) quantizes an
initializer per channel along that axis. The keys:

- ``quant_type`` (QuantType): the tensor's type instead of the weight or activation type.
- ``scale`` and ``zero_point``: the parameters themselves (both or neither; then none of
  ``symmetric``, ``reduce_range``, ``rmin``, ``rmax``).
- ``symmetric`` (bool); ``reduce_range`` (bool, initializers only); ``rmin``/``rmax``: the real
  range instead of the calibrated one (or the initializer's extremes).
- ``axis``: the channel axis of a per-channel initializer.
- ``convert`` (activations, QDQ only): a dict with ``quant_type`` (and optionally ``scale`` +
  ``zero_point``, or ``symmetric``/``rmin``/``rmax``) and ``recv_nodes`` (names of the consumers
  that read the converted type; all consumers when absent). The tensor is quantized in its own
  type and converted (DequantizeLinear -> QuantizeLinear) for those consumers: mixed precision.

Anything else is a ValueError that names the tensor and the key. Where onnxruntime would write an
unusable model (one per-channel dict with ``scale`` for a tensor of several channels, which
leaves the other channels without parameters) the error asks for one dict per channel.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto

from .quant_utils import QuantType, get_qmin_qmax_for_qType

__all__ = ["TensorQuantOverridesHelper"]

_KEYS = {"quant_type", "scale", "zero_point", "symmetric", "reduce_range", "rmin", "rmax", "axis"}
_CONVERT_KEYS = {"quant_type", "scale", "zero_point", "symmetric", "rmin", "rmax", "recv_nodes"}
_NOT_WITH_SCALE = ("symmetric", "reduce_range", "rmin", "rmax")
_INTEGER_TYPES = {
    QuantType.QInt8,
    QuantType.QUInt8,
    QuantType.QInt16,
    QuantType.QUInt16,
    QuantType.QInt4,
    QuantType.QUInt4,
}


class TensorQuantOverridesHelper:
    """The checked overrides of one quantization (onnxruntime's class name).

    Args:
        raw: ``extra_options["TensorQuantOverrides"]`` (None or {} for none).
        initializers: initializer shapes by name.
        activations: names of the model's other tensors.
        activation_type: the default activation QuantType (a ``convert`` must differ from it).
        consumers: consumer node names by tensor name (to check ``recv_nodes``).
    """

    def __init__(
        self,
        raw: dict | None,
        initializers: dict[str, tuple[int, ...]],
        activations: set[str],
        activation_type: QuantType,
        consumers: dict[str, set[str]],
    ):
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise TypeError(
                "extra_options['TensorQuantOverrides'] must be a dict of tensor name -> list of "
                f"dicts, got {type(raw).__name__}"
            )
        self.overrides: dict[str, list[dict[str, Any]]] = {}
        for name, entries in raw.items():
            where = f"TensorQuantOverrides[{name!r}]"
            if name not in initializers and name not in activations:
                raise ValueError(f"{where}: the model has no tensor named {name!r}")
            if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                raise ValueError(f"{where} must be a list of dicts, got {entries!r}")
            if not entries or not entries[0]:
                continue
            if len(entries) > 1 or "axis" in entries[0]:
                self._check_channels(where, name, entries, initializers)
            else:
                self._check_one(where, entries[0], name in initializers)
                if "scale" in entries[0] and name not in initializers:
                    qtype = entries[0].get("quant_type", activation_type).tensor_type
                    explicit_params(where, entries[0], qtype)
                if "convert" in entries[0]:
                    self._check_convert(
                        where, entries[0], activation_type, consumers.get(name, set())
                    )
            self.overrides[name] = [dict(e) for e in entries]

    # -- checks ------------------------------------------------------------------------------

    @staticmethod
    def _check_one(where: str, d: dict, is_initializer: bool, keys=_KEYS | {"convert"}) -> None:
        unknown = set(d) - keys
        if unknown:
            raise ValueError(
                f"{where}: unknown key {sorted(unknown)[0]!r}; the keys are "
                f"{', '.join(sorted(keys))}"
            )
        qt = d.get("quant_type")
        if qt is not None and not isinstance(qt, QuantType):
            raise TypeError(f"{where}['quant_type'] must be a QuantType, got {qt!r}")
        if qt is not None and qt not in _INTEGER_TYPES:
            raise ValueError(f"{where}['quant_type']={qt} is not supported; use an integer type")
        if ("scale" in d) != ("zero_point" in d):
            given = "scale" if "scale" in d else "zero_point"
            raise ValueError(f"{where}: {given!r} needs both 'scale' and 'zero_point'")
        if "scale" in d:
            clash = [k for k in _NOT_WITH_SCALE if k in d]
            if clash:
                raise ValueError(
                    f"{where}: {clash[0]!r} cannot be combined with 'scale' and 'zero_point'"
                )
            scale = np.asarray(d["scale"], dtype=np.float64)
            if scale.size != 1 or not np.isfinite(scale).all() or float(scale.ravel()[0]) <= 0:
                raise ValueError(f"{where}['scale'] must be one positive finite number")
            zp = np.asarray(d["zero_point"])
            if zp.size != 1 or not np.issubdtype(zp.dtype, np.integer):
                raise ValueError(f"{where}['zero_point'] must be one integer")
        for key in ("symmetric", "reduce_range"):
            if key in d and not isinstance(d[key], (bool, np.bool_)):
                raise TypeError(f"{where}[{key!r}] must be a bool, got {d[key]!r}")
        for key in ("rmin", "rmax"):
            if key in d and not np.isfinite(np.asarray(d[key], dtype=np.float64)).all():
                raise ValueError(f"{where}[{key!r}] must be a finite number")
        if "reduce_range" in d and not is_initializer:
            raise ValueError(
                f"{where}: 'reduce_range' applies to initializers only, not to an activation"
            )
        if "convert" in d and is_initializer:
            raise ValueError(f"{where}: 'convert' applies to activations only, not initializers")

    def _check_convert(
        self, where: str, d: dict, activation_type: QuantType, consumers: set[str]
    ) -> None:
        conv = d["convert"]
        cwhere = f"{where}['convert']"
        if not isinstance(conv, dict):
            raise ValueError(f"{cwhere} must be a dict, got {conv!r}")
        if "quant_type" not in conv:
            raise ValueError(f"{cwhere} must give a 'quant_type'")
        if "reduce_range" in conv:
            raise ValueError(f"{cwhere}: 'reduce_range' applies to initializers only")
        self._check_one(cwhere, conv, False, _CONVERT_KEYS)
        if "scale" in conv:
            explicit_params(cwhere, conv, conv["quant_type"].tensor_type)
        if conv["quant_type"] == d.get("quant_type", activation_type):
            raise ValueError(
                f"{cwhere}['quant_type'] must differ from the tensor's own type "
                f"({conv['quant_type']})"
            )
        recv = conv.get("recv_nodes")
        if recv is not None:
            if isinstance(recv, str) or not isinstance(recv, (list, tuple, set)):
                raise TypeError(f"{cwhere}['recv_nodes'] must be a set of node names, got {recv!r}")
            stray = sorted(set(recv) - consumers)
            if stray:
                raise ValueError(
                    f"{cwhere}['recv_nodes']: {stray[0]!r} is not a node that reads this tensor "
                    f"(its consumers: {', '.join(sorted(consumers)) or 'none'})"
                )

    def _check_channels(self, where: str, name: str, entries: list, inits: dict) -> None:
        if name not in inits:
            raise ValueError(
                f"{where}: per-channel overrides (several dicts or an 'axis') apply to "
                "initializers only"
            )
        first = entries[0]
        if "axis" not in first:
            raise ValueError(f"{where}: per-channel overrides need an 'axis' in the first dict")
        shape = inits[name]
        axis = first["axis"]
        if not isinstance(axis, (int, np.integer)) or not -len(shape) <= axis < len(shape):
            raise ValueError(
                f"{where}['axis']={axis!r} is out of range for a tensor of rank {len(shape)}"
            )
        axis = int(axis) % len(shape)
        channels = shape[axis]
        if len(entries) not in (1, channels):
            raise ValueError(
                f"{where}: {len(entries)} channel dicts for {channels} channels along axis "
                f"{axis}; give one dict, or one per channel"
            )
        if (
            len(entries) == 1
            and channels > 1
            and any(k in first for k in ("scale", "rmin", "rmax"))
        ):
            key = "scale" if "scale" in first else ("rmin" if "rmin" in first else "rmax")
            raise ValueError(
                f"{where}: {key!r} with a single dict leaves channels 1..{channels - 1} "
                f"without it; give one dict per channel ({channels})"
            )
        if ("rmin" in first) != ("rmax" in first):
            raise ValueError(f"{where}: per-channel overrides need both 'rmin' and 'rmax'")
        for i, d in enumerate(entries):
            cwhere = f"{where}[{i}]"
            if "convert" in d:
                raise ValueError(f"{cwhere}: 'convert' applies to activations only")
            self._check_one(cwhere, d, True)
            for key in ("quant_type", "symmetric", "reduce_range"):
                if i and key in d and d[key] != first.get(key):
                    raise ValueError(
                        f"{cwhere}[{key!r}] differs from channel 0; every channel must share it "
                        "(set it in the first dict)"
                    )
            if i and "axis" in d and int(d["axis"]) % len(shape) != axis:
                raise ValueError(f"{cwhere}['axis'] differs from channel 0's axis {axis}")
            for pair in (("scale", "zero_point"), ("rmin", "rmax")):
                if (pair[0] in first) != (pair[0] in d):
                    raise ValueError(
                        f"{cwhere}: give {pair[0]!r}/{pair[1]!r} for every channel or for none"
                    )

    # -- queries -----------------------------------------------------------------------------

    def __contains__(self, name: str) -> bool:
        return name in self.overrides

    def per_tensor(self, name: str) -> dict[str, Any]:
        """The tensor's single dict ({} when it has none or is per channel)."""
        entries = self.overrides.get(name)
        return entries[0] if entries and "axis" not in entries[0] else {}

    def channels(self, name: str) -> list[dict[str, Any]] | None:
        """The per-channel dicts (None when the tensor has no per-channel overrides)."""
        entries = self.overrides.get(name)
        return entries if entries and "axis" in entries[0] else None

    def is_per_tensor(self, name: str) -> bool:
        entries = self.overrides.get(name)
        return bool(entries) and "axis" not in entries[0]

    def convert(self, name: str) -> tuple[dict[str, Any], set[str] | None] | None:
        """(the ``convert`` dict, its receiving node names or None for all) or None."""
        conv = self.per_tensor(name).get("convert")
        if conv is None:
            return None
        recv = conv.get("recv_nodes")
        return conv, (set(recv) if recv is not None else None)

    def quant_types(self) -> set[int]:
        """Every TensorProto type the overrides ask for (to pick the opset)."""
        out = set()
        for entries in self.overrides.values():
            for d in entries:
                for src in (d, d.get("convert") or {}):
                    if "quant_type" in src:
                        out.add(src["quant_type"].tensor_type)
        return out


def explicit_params(where: str, d: dict, qtype: int) -> tuple[np.ndarray, np.ndarray]:
    """(zero point int64, scale float32) given in ``d``, the zero point checked against
    ``qtype``'s range."""
    zp = np.asarray(d["zero_point"]).astype(np.int64).reshape(())
    qmin, qmax = get_qmin_qmax_for_qType(qtype)
    if not qmin <= int(zp) <= qmax:
        name = TensorProto.DataType.Name(qtype)
        raise ValueError(
            f"{where}['zero_point']={int(zp)} is outside {name}'s range [{qmin}, {qmax}]"
        )
    return zp, np.asarray(d["scale"], dtype=np.float32).reshape(())
