"""LoRA adapters: onnxruntime's ``.onnx_adapter`` files, ``AdapterFormat`` and ``LoraAdapter``.

An adapter is a set of named tensors that replace a model's overridable initializers (initializers
that are also graph inputs) for the runs that activate it with ``RunOptions.add_active_adapter``.
The file format is onnxruntime's: a FlatBuffer with file identifier ``TORT`` whose root table
``Adapter`` holds ``format_version``, ``adapter_version``, ``model_version`` and a vector of
``Parameter`` tables (``name``, ``dims``, ``data_type`` with ONNX's element-type numbers, and
``raw_data``, 8-byte aligned). Files written here load in onnxruntime and the reverse.

The FlatBuffer reading and writing are done here, in a few dozen lines for these two tables, rather
than through the ``flatbuffers`` package: the core's dependencies stay onnx, numpy and pluggy.
"""

from __future__ import annotations

import os
import struct
from typing import Any

import numpy as np
from onnx import helper

from .errors import Fail, InvalidArgument

__all__ = ["AdapterFormat", "LoraAdapter", "read_adapter_bytes", "write_adapter_bytes"]

FORMAT_VERSION = 1
_IDENT = b"TORT"


# -- reading ----------------------------------------------------------------------------------------
class _Table:
    __slots__ = ("buf", "pos", "vt", "vt_len")

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf, self.pos = buf, pos
        self.vt = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vt_len = struct.unpack_from("<H", buf, self.vt)[0]

    def _field(self, index: int) -> int:
        slot = 4 + 2 * index
        if slot >= self.vt_len:
            return 0
        off = struct.unpack_from("<H", self.buf, self.vt + slot)[0]
        return self.pos + off if off else 0

    def int32(self, index: int, default: int = 0) -> int:
        at = self._field(index)
        return struct.unpack_from("<i", self.buf, at)[0] if at else default

    def _target(self, index: int) -> int:
        at = self._field(index)
        return at + struct.unpack_from("<I", self.buf, at)[0] if at else 0

    def string(self, index: int) -> str:
        at = self._target(index)
        if not at:
            return ""
        n = struct.unpack_from("<I", self.buf, at)[0]
        return self.buf[at + 4 : at + 4 + n].decode("utf-8")

    def vector(self, index: int) -> tuple[int, int]:
        """(start of the elements, count)."""
        at = self._target(index)
        if not at:
            return 0, 0
        return at + 4, struct.unpack_from("<I", self.buf, at)[0]

    def tables(self, index: int) -> list[_Table]:
        start, n = self.vector(index)
        out = []
        for k in range(n):
            at = start + 4 * k
            out.append(_Table(self.buf, at + struct.unpack_from("<I", self.buf, at)[0]))
        return out


def read_adapter_bytes(data: bytes) -> tuple[int, int, int, dict[str, np.ndarray]]:
    """(format version, adapter version, model version, parameters) of an adapter file's bytes.

    Raises:
        InvalidArgument: the bytes are not an adapter file.
    """
    if len(data) < 8 or data[4:8] != _IDENT:
        raise InvalidArgument(
            "The data is not a LoRA adapter file (no 'TORT' FlatBuffer identifier). Adapter files "
            "are written by AdapterFormat.export_adapter or onnxruntime's tools."
        )
    try:
        root = _Table(data, struct.unpack_from("<I", data, 0)[0])
        fmt, adapter_version, model_version = root.int32(0), root.int32(1), root.int32(2)
        params: dict[str, np.ndarray] = {}
        for p in root.tables(3):
            name = p.string(0)
            start, ndim = p.vector(1)
            dims = struct.unpack_from(f"<{ndim}q", data, start) if ndim else ()
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(p.int32(2)))
            raw_start, nbytes = p.vector(3)
            arr = np.frombuffer(data, dtype=dtype.newbyteorder("<"), count=nbytes // dtype.itemsize,
                                offset=raw_start)  # fmt: skip
            params[name] = arr.astype(dtype, copy=True).reshape(dims)
    except (struct.error, ValueError, KeyError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"The LoRA adapter file is damaged: {e}") from None
    if fmt != FORMAT_VERSION:
        raise InvalidArgument(
            f"LoRA adapter format version {fmt} is not supported (ort-core reads version "
            f"{FORMAT_VERSION})."
        )
    return fmt, adapter_version, model_version, params


# -- writing ----------------------------------------------------------------------------------------
class _Writer:
    """Front-to-back FlatBuffer writer: every offset points forward, as unsigned offsets must."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.patches: list[tuple[int, Any]] = []  # (offset field position, key of its target)
        self.placed: dict[Any, int] = {}

    def align(self, n: int) -> None:
        self.buf.extend(b"\0" * (-len(self.buf) % n))

    def table(self, key: Any, fields: list[tuple[str, Any]]) -> None:
        """Write a vtable and its table; ``fields`` are ("i32", value) or ("ref", key)."""
        self.align(4)
        vt_pos = len(self.buf)
        table_size = 4 + 4 * len(fields)
        vt_size = 4 + 2 * len(fields)
        self.buf.extend(struct.pack("<HH", vt_size, table_size))
        self.buf.extend(struct.pack(f"<{len(fields)}H", *[4 + 4 * i for i in range(len(fields))]))
        self.align(4)
        pos = len(self.buf)
        self.placed[key] = pos
        self.buf.extend(struct.pack("<i", pos - vt_pos))
        for kind, value in fields:
            if kind == "i32":
                self.buf.extend(struct.pack("<i", int(value)))
            else:
                self.patches.append((len(self.buf), value))
                self.buf.extend(b"\0\0\0\0")

    def string(self, key: Any, text: str) -> None:
        data = text.encode("utf-8")
        self.align(4)
        self.placed[key] = len(self.buf)
        self.buf.extend(struct.pack("<I", len(data)) + data + b"\0")

    def vector(self, key: Any, count: int, payload: bytes, align: int) -> None:
        """A vector whose elements start ``align``-aligned (the count sits just before them)."""
        self.align(4)
        while (len(self.buf) + 4) % align:
            self.buf.extend(b"\0\0\0\0")
        self.placed[key] = len(self.buf)
        self.buf.extend(struct.pack("<I", count) + payload)

    def offsets(self, key: Any, targets: list[Any]) -> None:
        """A vector of offsets to tables written later."""
        self.align(4)
        self.placed[key] = len(self.buf)
        self.buf.extend(struct.pack("<I", len(targets)))
        for t in targets:
            self.patches.append((len(self.buf), t))
            self.buf.extend(b"\0\0\0\0")

    def finish(self) -> bytes:
        for at, key in self.patches:
            target = self.placed[key]
            if target <= at:
                raise AssertionError("FlatBuffer offsets must point forward")  # a bug here
            struct.pack_into("<I", self.buf, at, target - at)
        return bytes(self.buf)


def write_adapter_bytes(
    adapter_version: int, model_version: int, params: dict[str, np.ndarray]
) -> bytes:
    """The bytes of an adapter file (onnxruntime's format)."""
    w = _Writer()
    w.buf.extend(b"\0\0\0\0" + _IDENT)
    w.patches.append((0, "root"))
    names = list(params)
    w.table(
        "root",
        [
            ("i32", FORMAT_VERSION),
            ("i32", adapter_version),
            ("i32", model_version),
            ("ref", "params"),
        ],
    )
    w.offsets("params", [("param", i) for i in range(len(names))])
    for i, name in enumerate(names):
        arr = np.ascontiguousarray(params[name])
        try:
            elem = helper.np_dtype_to_tensor_dtype(arr.dtype)
        except (KeyError, TypeError, ValueError):
            raise InvalidArgument(
                f"LoRA parameter '{name}' has dtype {arr.dtype}, which an adapter cannot hold."
            ) from None
        if arr.dtype.kind in "OUS":
            raise InvalidArgument(
                f"LoRA parameter '{name}' has element type STRING; adapters hold numeric tensors."
            )
        w.table(
            ("param", i),
            [("ref", ("name", i)), ("ref", ("dims", i)), ("i32", elem), ("ref", ("raw", i))],
        )
        w.string(("name", i), name)
        w.vector(("dims", i), arr.ndim, struct.pack(f"<{arr.ndim}q", *arr.shape), 8)
        raw = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        w.vector(("raw", i), len(raw), raw, 8)
    return w.finish()


# -- the API ----------------------------------------------------------------------------------------
def _array_of(value: Any, name: str) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if callable(getattr(value, "numpy", None)):
        return np.asarray(value.numpy())
    raise TypeError(f"LoRA parameter '{name}' must be an OrtValue, got {type(value).__name__}.")


class AdapterFormat:
    """Build, write and read adapter files (``onnxruntime.AdapterFormat``)."""

    def __init__(self, adapter: Any = None) -> None:
        self._format_version = FORMAT_VERSION
        self._adapter_version = 0
        self._model_version = 0
        self._params: dict[str, np.ndarray] = {}
        if adapter is not None:
            self._format_version, self._adapter_version, self._model_version, self._params = adapter

    @staticmethod
    def read_adapter(file_path: str | os.PathLike) -> AdapterFormat:
        """Read an adapter file."""
        with open(os.fspath(file_path), "rb") as f:
            return AdapterFormat(read_adapter_bytes(f.read()))

    def export_adapter(self, file_path: str | os.PathLike) -> None:
        """Write the adapter to a file."""
        data = write_adapter_bytes(self._adapter_version, self._model_version, self._params)
        with open(os.fspath(file_path), "wb") as f:
            f.write(data)

    def get_format_version(self) -> int:
        return self._format_version

    def set_adapter_version(self, adapter_version: int) -> None:
        self._adapter_version = int(adapter_version)

    def get_adapter_version(self) -> int:
        return self._adapter_version

    def set_model_version(self, model_version: int) -> None:
        self._model_version = int(model_version)

    def get_model_version(self) -> int:
        return self._model_version

    def set_parameters(self, params: dict[str, Any]) -> None:
        """The adapter's tensors, name -> OrtValue."""
        self._params = {str(k): _array_of(v, str(k)) for k, v in params.items()}

    def get_parameters(self) -> dict[str, Any]:
        """name -> OrtValue."""
        from .ortvalue import OrtValue

        return {k: OrtValue.ortvalue_from_numpy(v) for k, v in self._params.items()}


class LoraAdapter:
    """A loaded adapter, activated per run with ``RunOptions.add_active_adapter(adapter)``."""

    def __init__(self) -> None:
        self._parameters: dict[str, np.ndarray] = {}
        self._versions = (FORMAT_VERSION, 0, 0)

    def Load(self, adapter_file_path: str | os.PathLike) -> None:  # noqa: N802 - onnxruntime's name
        """Read an adapter file (written by ``AdapterFormat.export_adapter`` or onnxruntime).

        Raises:
            Fail: the file does not exist.
            InvalidArgument: it is not an adapter file.
        """
        path = os.fspath(adapter_file_path)
        if not os.path.isfile(path):
            raise Fail(f"Unable to open LoRA adapter file '{path}': no such file.")
        with open(path, "rb") as f:
            fmt, adapter_version, model_version, params = read_adapter_bytes(f.read())
        for arr in params.values():
            arr.flags.writeable = False
        self._parameters = params
        self._versions = (fmt, adapter_version, model_version)
