"""Sparse tensors: :class:`SparseTensor` (COO, CSR and block-sparse formats) and :func:`to_dense`.

As in onnxruntime, :class:`SparseTensor` (``onnxruntime.SparseTensor``) wraps a native-level object
(``capi.onnxruntime_pybind11_state.SparseTensor``, :class:`_CSparseTensor` here) that the factory
functions build from numpy arrays. Numeric values and int64 indices are used without a copy (the
views returned by ``values()`` and the index views are read-only); string values are copied into
an object array of ``str``.

The runtime computes with dense tensors: :func:`to_dense` turns a sparse tensor into the dense
array it stands for (zeros, or empty strings, where no value is given).

Where ort-core differs from onnxruntime 1.32, on purpose: indices are checked against the dense
shape (onnxruntime accepts out-of-range indices and reads past its buffers later), negative dense
dims are refused, fractional float indices are refused (onnxruntime truncates them), string values
may be given as an object array of ``str`` or as UTF-8 bytes (onnxruntime refuses the first and
misreads the second), and ``as_blocksparse_view().indices()`` returns the int32 indices (it raises
in onnxruntime).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._elements import element_type_of, tensor_type_text
from .device import OrtDevice, OrtDeviceVendorId, _NativeEnum
from .errors import InvalidArgument, ProviderNotAvailable
from .plugins import device_provider

__all__ = [
    "OrtSparseFormat",
    "SparseBlockSparseView",
    "SparseCooView",
    "SparseCsrView",
    "SparseTensor",
    "to_dense",
]


class OrtSparseFormat(_NativeEnum):
    """The layout of a sparse tensor (onnxruntime's values)."""

    ORT_SPARSE_UNDEFINED = 0
    ORT_SPARSE_COO = 1
    ORT_SPARSE_CSRC = 2
    ORT_SPARSE_BLOCK_SPARSE = 4


def _read_only(arr: Any) -> Any:
    if isinstance(arr, np.ndarray):
        view = arr.view()
        view.flags.writeable = False
        return view
    return arr


class SparseCooView:
    """The COO indices of a sparse tensor."""

    __slots__ = ("_indices",)

    def __init__(self, indices: np.ndarray) -> None:
        self._indices = indices

    def indices(self) -> np.ndarray:
        """int64 indices: linear (1-D, one per value) or coordinates (2-D, one row per value)."""
        return _read_only(self._indices)


class SparseCsrView:
    """The CSR indices of a sparse tensor."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, inner: np.ndarray, outer: np.ndarray) -> None:
        self._inner = inner
        self._outer = outer

    def inner(self) -> np.ndarray:
        """int64 column index of each value."""
        return _read_only(self._inner)

    def outer(self) -> np.ndarray:
        """int64 offsets of each row's first value (rows + 1 entries)."""
        return _read_only(self._outer)


class SparseBlockSparseView:
    """The block indices of a block-sparse tensor."""

    __slots__ = ("_indices",)

    def __init__(self, indices: np.ndarray) -> None:
        self._indices = indices

    def indices(self) -> np.ndarray:
        """int32 indices of shape ``[2, blocks]``: the block row and block column of each block."""
        return _read_only(self._indices)


# -- argument checks -------------------------------------------------------------------------
def _dense_shape(dense_shape: Any) -> list[int]:
    try:
        dims = [int(d) for d in np.asarray(dense_shape).reshape(-1).tolist()]
    except (TypeError, ValueError):
        raise TypeError(f"dense_shape must be a list of ints, got {dense_shape!r}.") from None
    if any(d < 0 for d in dims):
        raise InvalidArgument(f"dense_shape {dims} has a negative dim; dims must be >= 0.")
    return dims


def _values(values: Any, fmt: str, ndim: int | None = 1) -> np.ndarray:
    if not isinstance(values, np.ndarray):
        raise TypeError(
            f"{fmt}: values must be a numpy array, got {type(values).__name__}; pass "
            "np.array(values, dtype=...)."
        )
    if ndim is not None and values.ndim != ndim:
        raise InvalidArgument(
            f"Expecting values {ndim}-D numpy values array for {fmt} format. Got dims: "
            f"{values.ndim}"
        )
    kind = values.dtype.kind
    if kind in "OUS":
        return _strings(values, fmt)
    if not values.flags.c_contiguous:
        raise InvalidArgument(
            f"Require contiguous numpy array of values ({fmt}); pass np.ascontiguousarray(values)."
        )

    if element_type_of(values.dtype) is None:
        raise InvalidArgument(f"Unsupported values data type: {values.dtype} ({fmt}).")
    return values


def _strings(values: np.ndarray, fmt: str) -> np.ndarray:
    out = np.empty(values.shape, dtype=object)
    flat = out.reshape(-1)
    for i, item in enumerate(values.reshape(-1).tolist()):
        if isinstance(item, bytes):
            try:
                item = item.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InvalidArgument(f"{fmt}: string value {i} is not UTF-8 ({e}).") from None
        if not isinstance(item, str):
            raise InvalidArgument(
                f"{fmt}: value {i} is a {type(item).__name__}; string values must be str."
            )
        flat[i] = item
    return out


def _indices(indices: Any, what: str, dtype: type = np.int64) -> np.ndarray:
    arr = indices if isinstance(indices, np.ndarray) else np.asarray(indices)
    if arr.size == 0:
        return np.ascontiguousarray(arr, dtype=dtype)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.trunc(arr)):
            raise InvalidArgument(f"{what} must be integers, got fractional values {arr!r}.")
    elif arr.dtype.kind not in "iu":
        raise InvalidArgument(f"{what} must be an integer array, got dtype {arr.dtype}.")
    if arr.dtype == dtype and arr.flags.c_contiguous:
        return arr
    return np.ascontiguousarray(arr, dtype=dtype)


def _check_range(idx: np.ndarray, bound: int, what: str) -> None:
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= bound):
        raise InvalidArgument(
            f"{what} must be in [0, {bound}); got values from {int(idx.min())} to {int(idx.max())}."
        )


def _host_device(device: Any, fmt: str) -> OrtDevice:
    getter = getattr(device, "_get_c_device", None)
    if getter is None:
        raise TypeError(
            f"{fmt}: ort_device must be an OrtDevice (OrtDevice.make('cpu', 0)), got "
            f"{type(device).__name__}."
        )
    dev = getter()
    if dev.kind != "cpu":
        raise InvalidArgument(
            f"Unsupported OrtDevice type: {dev!r}. {fmt} takes host numpy arrays, so ort_device "
            "must be OrtDevice.make('cpu', 0); copy the result to a GPU with to_cuda()."
        )
    return dev


# -- the native-level sparse tensor ----------------------------------------------------------
class _CSparseTensor:
    """onnxruntime's native ``SparseTensor`` (``capi.onnxruntime_pybind11_state.SparseTensor``)."""

    __slots__ = ("_format", "_shape", "_values", "_indices", "_device", "_device_name", "_provider")

    def __init__(
        self,
        fmt: OrtSparseFormat,
        dense_shape: list[int],
        values: Any,
        indices: tuple[Any, ...],
        device: OrtDevice,
        device_name: str = "cpu",
        provider: Any = None,
    ) -> None:
        self._format = fmt
        self._shape = dense_shape
        self._values = values
        self._indices = indices
        self._device = device
        self._device_name = device_name
        self._provider = provider

    # -- factories ---------------------------------------------------------------------------
    @staticmethod
    def sparse_coo_from_numpy(
        dense_shape: Sequence[int], values: np.ndarray, coo_indices: Any, device: Any
    ) -> _CSparseTensor:
        """A COO sparse tensor; see :meth:`SparseTensor.sparse_coo_from_numpy`."""
        dev = _host_device(device, "COO")
        shape = _dense_shape(dense_shape)
        vals = _values(values, "COO")
        idx = _indices(coo_indices, "COO indices")
        nnz = vals.shape[0]
        if idx.ndim == 1 and idx.size == 2 * nnz and nnz:
            idx = idx.reshape(nnz, 2)
        size = int(np.prod(shape, dtype=np.int64))
        if idx.ndim == 1 and idx.size == nnz:
            _check_range(idx, size, f"COO linear indices of a tensor of shape {shape}")
        elif idx.ndim == 2 and idx.shape == (nnz, 2):
            if len(shape) != 2:
                raise InvalidArgument(
                    f"COO coordinate indices (one row and column per value) need a 2-D dense "
                    f"shape, got {shape}; give linear indices for other ranks."
                )
            _check_range(idx[:, 0], shape[0], "COO row indices")
            _check_range(idx[:, 1], shape[1], "COO column indices")
        else:
            raise InvalidArgument(
                f"Index size: {idx.size} must be equal to or twice the values size: {nnz}. "
                "Give one linear index per value, or a (values, 2) array of coordinates."
            )
        return _CSparseTensor(OrtSparseFormat.ORT_SPARSE_COO, shape, vals, (idx,), dev)

    @staticmethod
    def sparse_csr_from_numpy(
        dense_shape: Sequence[int],
        values: np.ndarray,
        inner_indices: Any,
        outer_indices: Any,
        device: Any,
    ) -> _CSparseTensor:
        """A CSR sparse tensor; see :meth:`SparseTensor.sparse_csr_from_numpy`."""
        dev = _host_device(device, "CSR")
        shape = _dense_shape(dense_shape)
        if len(shape) != 2:
            raise InvalidArgument(f"dense shape must 2-D. Got: {len(shape)} (shape {shape})")
        vals = _values(values, "CSR", ndim=None)
        inner = _indices(inner_indices, "CSR inner indices")
        outer = _indices(outer_indices, "CSR outer indices")
        if vals.ndim != 1 or inner.ndim != 1 or outer.ndim != 1:
            raise InvalidArgument("Expecting all data to be 1-D numpy arrays for CSR format.")
        nnz, rows = vals.shape[0], shape[0]
        if (inner.size == 0) != (outer.size == 0):
            raise InvalidArgument(
                "Inner and Outer indices must either be both zero or non-zero (a tensor without "
                "values has empty inner and outer indices)."
            )
        if inner.size != nnz:
            raise InvalidArgument(
                f"Expecting inner index size: {inner.size} the same as values size: {nnz}"
            )
        if outer.size not in (0, rows + 1):
            raise InvalidArgument(
                f"Outer index count must be rows + 1 or zero. Got: {outer.size} rows: {rows}"
            )
        if outer.size:
            steps = np.diff(outer)
            if int(outer[0]) != 0 or int(outer[-1]) != nnz or (steps.size and steps.min() < 0):
                raise InvalidArgument(
                    f"CSR outer indices must start at 0, never decrease and end at the number of "
                    f"values ({nnz}); got {outer.tolist()}."
                )
            _check_range(inner, shape[1], "CSR inner (column) indices")
        return _CSparseTensor(OrtSparseFormat.ORT_SPARSE_CSRC, shape, vals, (inner, outer), dev)

    @staticmethod
    def blocksparse_from_numpy(
        dense_shape: Sequence[int], values: np.ndarray, indices: Any, device: Any
    ) -> _CSparseTensor:
        """A block-sparse tensor: ``values`` of shape ``[blocks, block_rows, block_cols]`` and
        int32 ``indices`` of shape ``[2, blocks]`` (block row, block column of each block)."""
        dev = _host_device(device, "BlockSparse")
        shape = _dense_shape(dense_shape)
        vals = _values(values, "BlockSparse", ndim=None)
        if vals.ndim < 3:
            raise InvalidArgument(f"Expecting to have at lest 3-D shape. Got:{vals.ndim}")
        if vals.ndim != 3:
            raise InvalidArgument(
                f"BlockSparse values must be [blocks, block_rows, block_cols], got shape "
                f"{list(vals.shape)}."
            )
        idx = _indices(indices, "BlockSparse indices", np.int32)
        if idx.ndim != 2:
            raise InvalidArgument(f"Expecting indices to have 2-D shape . Got: {idx.ndim}")
        blocks, bh, bw = vals.shape
        if len(shape) != 2 or idx.shape != (2, blocks):
            raise InvalidArgument(
                f"BlockSparse needs a 2-D dense shape and indices of shape [2, {blocks}]; got "
                f"dense shape {shape} and indices of shape {list(idx.shape)}."
            )
        if bh == 0 or bw == 0 or shape[0] % bh or shape[1] % bw:
            raise InvalidArgument(
                f"BlockSparse blocks of {bh}x{bw} must tile the dense shape {shape}."
            )
        _check_range(idx[0], shape[0] // bh, "BlockSparse block rows")
        _check_range(idx[1], shape[1] // bw, "BlockSparse block columns")
        return _CSparseTensor(OrtSparseFormat.ORT_SPARSE_BLOCK_SPARSE, shape, vals, (idx,), dev)

    # -- accessors ---------------------------------------------------------------------------
    @property
    def format(self) -> OrtSparseFormat:
        """The layout."""
        return self._format

    def dense_shape(self) -> list[int]:
        """The shape of the dense tensor this sparse tensor stands for."""
        return list(self._shape)

    def data_type(self) -> str:
        """``sparse_tensor(<element type>)``, e.g. ``sparse_tensor(float)``."""

        elem = element_type_of(self._values.dtype)
        return "sparse_" + tensor_type_text(elem if elem is not None else 0)

    def device_name(self) -> str:
        """Where the buffers live (onnxruntime's native spelling: ``Cpu``, ``Cuda``)."""
        return {"cpu": "Cpu", "cuda": "Cuda"}.get(self._device_name, self._device_name)

    def values(self) -> np.ndarray:
        """The values: a read-only view of numeric values, a copy of string values."""
        vals = self._host(self._values)
        if vals.dtype.kind == "O":
            return vals.copy()
        return _read_only(vals)

    def _host(self, arr: Any) -> np.ndarray:
        return arr if self._provider is None else self._provider.to_host(arr)

    def _require(self, fmt: OrtSparseFormat, name: str) -> None:
        if self._format != fmt:
            raise InvalidArgument(
                f"This sparse tensor does not contain {name} format; it is "
                f"{self._format.name}. Use the view of its own format."
            )

    def get_coo_data(self) -> SparseCooView:
        """The COO indices."""
        self._require(OrtSparseFormat.ORT_SPARSE_COO, "COO")
        return SparseCooView(self._host(self._indices[0]))

    def get_csrc_data(self) -> SparseCsrView:
        """The CSR indices."""
        self._require(OrtSparseFormat.ORT_SPARSE_CSRC, "CSR(C)")
        return SparseCsrView(self._host(self._indices[0]), self._host(self._indices[1]))

    def get_blocksparse_data(self) -> SparseBlockSparseView:
        """The block-sparse indices."""
        self._require(OrtSparseFormat.ORT_SPARSE_BLOCK_SPARSE, "BlockSparse")
        return SparseBlockSparseView(self._host(self._indices[0]))

    def to_cuda(self, device: Any) -> _CSparseTensor:
        """A copy on a CUDA device (needs an installed CUDA provider)."""
        getter = getattr(device, "_get_c_device", None)
        if getter is None:
            raise TypeError(f"to_cuda needs an OrtDevice, got {type(device).__name__}.")
        dev = getter()

        try:
            ep = device_provider("cuda", dev.device_id())
        except ProviderNotAvailable as e:
            raise ProviderNotAvailable(
                f"Cuda is not available in this build: the CUDA provider is installed but cannot "
                f"run here: {e.message}"
            ) from None
        if ep is None:
            raise ProviderNotAvailable(
                "Cuda is not available in this build: no CUDA execution provider is installed "
                "(pip install ort-core[cuda])."
            )
        if self._device.kind != "cpu":
            raise InvalidArgument(
                f"to_cuda: this sparse tensor is already on '{self._device_name}'; cross-device "
                "copies are not supported (copy from the CPU tensor)."
            )
        if self._values.dtype.kind == "O":
            raise InvalidArgument("Can not copy string tensor to GPU devices.")
        if dev.kind != "gpu" or dev.device_vendor_id() != OrtDeviceVendorId.NVIDIA:
            raise InvalidArgument(
                f"to_cuda needs a CUDA device, OrtDevice.make('cuda', device_id); got {dev!r}."
            )
        return _CSparseTensor(
            self._format,
            list(self._shape),
            ep.to_device(self._values),
            tuple(ep.to_device(i) for i in self._indices),
            OrtDevice(dev),
            "cuda",
            ep,
        )

    def __repr__(self) -> str:
        return f"<SparseTensor {self._format.name} {self.data_type()} {self._shape}>"


# onnxruntime's name for the native class
_CSparseTensor.__name__ = _CSparseTensor.__qualname__ = "SparseTensor"


# -- the user-level sparse tensor ------------------------------------------------------------
class SparseTensor:
    """A sparse tensor, as ``onnxruntime.SparseTensor``: build it with
    :meth:`sparse_coo_from_numpy` or :meth:`sparse_csr_from_numpy`, pass it to
    ``OrtValue.ort_value_from_sparse_tensor``, and read it back with the views."""

    __slots__ = ("_tensor",)

    def __init__(self, sparse_tensor: _CSparseTensor) -> None:
        if not isinstance(sparse_tensor, _CSparseTensor):
            raise InvalidArgument(
                "`Provided object` needs to be of type ort_core's native SparseTensor; build a "
                "SparseTensor with SparseTensor.sparse_coo_from_numpy(...) or "
                "sparse_csr_from_numpy(...)."
            )
        self._tensor = sparse_tensor

    def _get_c_tensor(self) -> _CSparseTensor:
        """The native sparse tensor."""
        return self._tensor

    @classmethod
    def sparse_coo_from_numpy(
        cls,
        dense_shape: Sequence[int],
        values: np.ndarray,
        coo_indices: Any,
        ort_device: OrtDevice,
    ) -> SparseTensor:
        """A sparse tensor in COO format.

        Args:
            dense_shape: the dims of the dense tensor.
            values: a contiguous 1-D array of the values (numbers, bool or strings); numeric
                values are used without a copy.
            coo_indices: int64 indices, either one linear index per value (1-D) or a (values, 2)
                array of row/column coordinates for a 2-D tensor (a flat array of twice the
                number of values is read as coordinates too).
            ort_device: the device of the arrays: ``OrtDevice.make("cpu", 0)``.

        Raises:
            InvalidArgument: the arrays do not fit each other or the dense shape.
        """
        return cls(
            _CSparseTensor.sparse_coo_from_numpy(dense_shape, values, coo_indices, ort_device)
        )

    @classmethod
    def sparse_csr_from_numpy(
        cls,
        dense_shape: Sequence[int],
        values: np.ndarray,
        inner_indices: Any,
        outer_indices: Any,
        ort_device: OrtDevice,
    ) -> SparseTensor:
        """A 2-D sparse tensor in CSR format.

        Args:
            dense_shape: ``[rows, cols]``.
            values: a contiguous 1-D array of the values, row by row.
            inner_indices: int64 column index of each value.
            outer_indices: int64 offsets of each row's first value (``rows + 1`` entries, or
                none when there are no values).
            ort_device: the device of the arrays: ``OrtDevice.make("cpu", 0)``.
        """
        return cls(
            _CSparseTensor.sparse_csr_from_numpy(
                dense_shape, values, inner_indices, outer_indices, ort_device
            )
        )

    def values(self) -> np.ndarray:
        """The values (a read-only view of numeric values; a copy of strings)."""
        return self._tensor.values()

    def as_coo_view(self) -> SparseCooView:
        """The COO indices: ``as_coo_view().indices()``. Raises for other formats."""
        return self._tensor.get_coo_data()

    def as_csrc_view(self) -> SparseCsrView:
        """The CSR indices: ``as_csrc_view().inner()``, ``.outer()``. Raises for other formats."""
        return self._tensor.get_csrc_data()

    def as_blocksparse_view(self) -> SparseBlockSparseView:
        """The block-sparse indices: ``as_blocksparse_view().indices()``."""
        return self._tensor.get_blocksparse_data()

    def to_cuda(self, ort_device: OrtDevice) -> SparseTensor:
        """A copy on a CUDA device.

        Raises:
            ProviderNotAvailable: no CUDA provider is installed (a RuntimeError).
            InvalidArgument: string values, a tensor already on a GPU, or a non-CUDA device.
        """
        return SparseTensor(self._tensor.to_cuda(ort_device))

    def format(self) -> OrtSparseFormat:
        """The layout (:class:`OrtSparseFormat`)."""
        return self._tensor.format

    def dense_shape(self) -> list[int]:
        """The dims of the dense tensor."""
        return self._tensor.dense_shape()

    def data_type(self) -> str:
        """``sparse_tensor(<element type>)``."""
        return self._tensor.data_type()

    def device_name(self) -> str:
        """Where the buffers live: ``cpu`` or ``cuda``."""
        return self._tensor.device_name().lower()

    def __repr__(self) -> str:
        return repr(self._tensor)


def to_dense(sparse: Any) -> np.ndarray:
    """The dense host array a sparse tensor stands for: its values at its indices, zeros (empty
    strings for string tensors) elsewhere. Values at a repeated index add up, as onnxruntime's
    sparse kernels compute them (a repeated string index keeps its last value).

    Args:
        sparse: a :class:`SparseTensor`, a native sparse tensor, or an ``OrtValue`` holding one.
    """
    if hasattr(sparse, "is_sparse_tensor") and hasattr(sparse, "as_sparse_tensor"):
        sparse = sparse.as_sparse_tensor()
    if isinstance(sparse, SparseTensor):
        sparse = sparse._get_c_tensor()
    if not isinstance(sparse, _CSparseTensor):
        raise TypeError(f"to_dense needs a sparse tensor, got {type(sparse).__name__}.")
    values = sparse._host(sparse._values)
    indices = [sparse._host(i) for i in sparse._indices]
    shape = sparse.dense_shape()
    dense = np.zeros(shape, dtype=values.dtype) if values.dtype.kind != "O" else None
    if dense is None:
        dense = np.full(shape, "", dtype=object)
    put = _assign if values.dtype.kind == "O" else np.add.at
    fmt = sparse.format
    if fmt == OrtSparseFormat.ORT_SPARSE_COO:
        idx = indices[0]
        if idx.ndim == 1:
            put(dense.reshape(-1), idx, values)
        else:
            put(dense, (idx[:, 0], idx[:, 1]), values)
    elif fmt == OrtSparseFormat.ORT_SPARSE_CSRC:
        inner, outer = indices
        if outer.size:
            rows = np.repeat(np.arange(shape[0]), np.diff(outer))
            put(dense, (rows, inner), values)
    else:
        (idx,) = indices
        _, bh, bw = values.shape
        for k in range(values.shape[0]):
            r, c = int(idx[0, k]), int(idx[1, k])
            block = dense[r * bh : (r + 1) * bh, c * bw : (c + 1) * bw]
            if values.dtype.kind == "O":
                block[...] = values[k]
            else:
                block += values[k]
    return dense


def _assign(target: np.ndarray, index: Any, values: np.ndarray) -> None:
    target[index] = values


def from_dense(dense: Any) -> SparseTensor:
    """A COO :class:`SparseTensor` (linear indices) of the non-zero elements of a host array, as
    a graph output declared ``sparse_tensor(...)`` is returned to the user."""
    arr = np.asarray(dense)
    flat = arr.reshape(-1)
    nz = np.flatnonzero(flat != 0) if arr.dtype.kind != "O" else np.flatnonzero(flat != "")
    return SparseTensor.sparse_coo_from_numpy(
        list(arr.shape), flat[nz], nz.astype(np.int64), OrtDevice.make("cpu", 0)
    )
