"""Tensors of the Open Inference Protocol <-> numpy arrays, for JSON (HTTP), the binary-tensor
extension (HTTP) and protobuf (gRPC). Every malformed piece is an :class:`InvalidRequest` naming
the input and what is wrong with it."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .datatypes import decode_bytes, encode_bytes, numpy_to_v2, v2_to_numpy
from .errors import InvalidRequest

__all__ = [
    "Tensor",
    "parse_json_object",
    "decode_json_request",
    "encode_json_response",
    "decode_grpc_request",
    "encode_grpc_response",
]

#: (name, datatype, shape, array) of one decoded input
Tensor = tuple[str, str, list[int], np.ndarray]

_UNSUPPORTED_PARAMS = ("sequence_id", "sequence_start", "sequence_end", "classification")


def _shape(value: Any, name: str) -> list[int]:
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value
    ):
        raise InvalidRequest(
            f"input {name!r}: shape must be a list of non-negative integers, got {value!r}"
        )
    return list(value)


def _count(shape: Sequence[int]) -> int:
    return math.prod(shape) if shape else 1


def _from_raw(name: str, datatype: str, shape: list[int], raw: bytes | memoryview) -> np.ndarray:
    count = _count(shape)
    if datatype == "BYTES":
        return decode_bytes(raw, count, name).reshape(shape)
    dtype = v2_to_numpy(datatype).newbyteorder("<") if datatype != "BF16" else v2_to_numpy("BF16")
    if len(raw) != count * dtype.itemsize:
        raise InvalidRequest(
            f"input {name!r}: {len(raw)} bytes of data for shape {shape} of {datatype}, which "
            f"needs {count * dtype.itemsize}"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def _from_list(name: str, datatype: str, shape: list[int], data: Any) -> np.ndarray:
    if not isinstance(data, list):
        data = [data]
    try:
        if datatype == "BYTES":
            flat = np.asarray(data, dtype=object).ravel()
            if not all(isinstance(x, str) for x in flat):
                raise ValueError("BYTES elements must be strings")
            arr = flat
        elif datatype == "BF16":
            raise InvalidRequest(f"input {name!r}: BF16 data travels as binary data only")
        else:
            dtype = v2_to_numpy(datatype)
            arr = np.asarray(data)
            if arr.dtype == object or arr.dtype.kind in "SU":
                raise ValueError("elements must be numbers")
            if datatype == "BOOL" and arr.dtype != np.bool_:
                raise ValueError("BOOL elements must be true or false")
            if arr.dtype.kind == "f" and dtype.kind in "iub":
                raise ValueError(f"{datatype} elements must be integers")
            arr = arr.astype(dtype, casting="unsafe") if arr.size else np.empty(0, dtype)
            if dtype.kind in "iu" and arr.size and not np.array_equal(arr, np.asarray(data)):
                raise ValueError(f"elements out of the range of {datatype}")
    except InvalidRequest:
        raise
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidRequest(
            f"input {name!r}: data does not fit datatype {datatype}: {exc}"
        ) from None
    if arr.size != _count(shape):
        raise InvalidRequest(
            f"input {name!r}: {arr.size} elements of data for shape {shape}, which holds "
            f"{_count(shape)}"
        )
    return arr.reshape(shape)


def parse_json_object(body: bytes, what: str = "a JSON object") -> dict[str, Any]:
    """The JSON object in ``body``, or InvalidRequest (malformed, too deeply nested, not an
    object)."""
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise InvalidRequest(f"the request body must be {what}")
    return obj


def decode_json_request(
    body: bytes, header_length: int | None
) -> tuple[dict[str, Any], list[Tensor], list[str], dict[str, bool]]:
    """Decode an HTTP infer request: JSON alone, or JSON followed by binary tensor data when
    ``header_length`` (the Inference-Header-Content-Length header) is given.

    Returns:
        the JSON object, the inputs, the requested output names (empty: all), and for each
        output whether it goes back as binary data (key ``""``: the request-wide default).
    """
    if header_length is not None and not 0 <= header_length <= len(body):
        raise InvalidRequest(
            f"Inference-Header-Content-Length {header_length} is outside the body's "
            f"{len(body)} bytes"
        )
    head = body if header_length is None else body[:header_length]
    binary = memoryview(body)[header_length:] if header_length is not None else memoryview(b"")
    req = parse_json_object(head, "a JSON object with an 'inputs' list")
    params = req.get("parameters") or {}
    if not isinstance(params, dict):
        raise InvalidRequest("'parameters' must be a JSON object")
    for key in _UNSUPPORTED_PARAMS:
        if key in params:
            raise InvalidRequest(f"request parameter {key!r} is not supported by ort-core serve")
    inputs = req.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidRequest("the request needs a non-empty 'inputs' list")
    tensors: list[Tensor] = []
    offset = 0
    for i, item in enumerate(inputs):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidRequest(f"inputs[{i}] must be an object with a 'name'")
        name = item["name"]
        datatype = item.get("datatype")
        v2_to_numpy(datatype)
        shape = _shape(item.get("shape"), name)
        iparams = item.get("parameters") or {}
        if not isinstance(iparams, dict):
            raise InvalidRequest(f"input {name!r}: 'parameters' must be a JSON object")
        size = iparams.get("binary_data_size")
        if size is not None:
            if "data" in item:
                raise InvalidRequest(f"input {name!r} has both 'data' and binary_data_size")
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise InvalidRequest(
                    f"input {name!r}: binary_data_size {size!r} does not fit the "
                    f"{len(binary) - offset} bytes of binary data left"
                )
            arr = _from_raw(name, datatype, shape, binary[offset : offset + size])
            offset += size
        elif "data" in item:
            arr = _from_list(name, datatype, shape, item["data"])
        else:
            raise InvalidRequest(f"input {name!r} has neither 'data' nor binary_data_size")
        tensors.append((name, datatype, shape, arr))
    if offset != len(binary):
        raise InvalidRequest(
            f"{len(binary) - offset} bytes of binary data follow the inputs unused; check the "
            "inputs' binary_data_size"
        )
    outputs, binary_flags = [], {"": bool(params.get("binary_data_output", False))}
    requested = req.get("outputs") or []
    if not isinstance(requested, list):
        raise InvalidRequest("'outputs' must be a list")
    for i, item in enumerate(requested):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidRequest(f"outputs[{i}] must be an object with a 'name'")
        oparams = item.get("parameters") or {}
        if not isinstance(oparams, dict):
            raise InvalidRequest(f"output {item['name']!r}: 'parameters' must be a JSON object")
        if oparams.get("classification"):
            raise InvalidRequest("the classification extension is not supported by ort-core serve")
        outputs.append(item["name"])
        if "binary_data" in oparams:
            binary_flags[item["name"]] = bool(oparams["binary_data"])
    return req, tensors, outputs, binary_flags


def _json_data(array: np.ndarray) -> list:
    if array.dtype == object or array.dtype.kind in "SU":
        return [
            x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in array.ravel()
        ]
    if array.dtype.kind == "f" and array.dtype.itemsize < 4 or array.dtype.name == "bfloat16":
        array = array.astype(np.float32)
    return array.ravel().tolist()


def _raw(array: np.ndarray) -> bytes:
    if array.dtype == object or array.dtype.kind in "SU":
        return encode_bytes(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return np.ascontiguousarray(array).tobytes()


def encode_json_response(
    model: str,
    version: str,
    request_id: Any,
    results: Mapping[str, np.ndarray],
    datatypes: Mapping[str, str],
    binary_flags: Mapping[str, bool],
) -> tuple[bytes, int | None]:
    """Encode an HTTP infer response; returns the body and, when some output travels as binary
    data, the length of its JSON header (for Inference-Header-Content-Length)."""
    outputs, chunks = [], []
    default = binary_flags.get("", False)
    for name, value in results.items():
        arr = np.asarray(value)
        datatype = datatypes.get(name) or numpy_to_v2(arr.dtype)
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(arr.shape)}
        if binary_flags.get(name, default) or datatype == "BF16":
            raw = _raw(arr)
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = _json_data(arr)
        outputs.append(entry)
    resp: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": outputs}
    if request_id not in (None, ""):
        resp["id"] = request_id
    head = json.dumps(resp, separators=(",", ":")).encode()
    if not chunks:
        return head, None
    return head + b"".join(chunks), len(head)


# -- gRPC ---------------------------------------------------------------------------------------
_CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def decode_grpc_request(req: Any) -> tuple[list[Tensor], list[str]]:
    """Decode a ModelInferRequest: inputs from raw_input_contents or typed contents."""
    for key in _UNSUPPORTED_PARAMS:
        if key in req.parameters:
            raise InvalidRequest(f"request parameter {key!r} is not supported by ort-core serve")
    if not req.inputs:
        raise InvalidRequest("the request has no inputs")
    raw = req.raw_input_contents
    if raw and len(raw) != len(req.inputs):
        raise InvalidRequest(
            f"{len(raw)} raw_input_contents for {len(req.inputs)} inputs; give one per input, "
            "in the order of inputs"
        )
    tensors: list[Tensor] = []
    for i, t in enumerate(req.inputs):
        v2_to_numpy(t.datatype)
        shape = _shape(list(t.shape), t.name)
        if raw:
            arr = _from_raw(t.name, t.datatype, shape, raw[i])
        else:
            field = _CONTENTS_FIELD.get(t.datatype)
            if field is None:
                raise InvalidRequest(
                    f"input {t.name!r}: {t.datatype} has no typed contents field; send it in "
                    "raw_input_contents"
                )
            values = list(getattr(t.contents, field))
            if t.datatype == "BYTES":
                arr = np.empty(len(values), dtype=object)
                arr[:] = values
                if arr.size != _count(shape):
                    raise InvalidRequest(
                        f"input {t.name!r}: {arr.size} elements for shape {shape}, which holds "
                        f"{_count(shape)}"
                    )
                arr = arr.reshape(shape)
            else:
                arr = _from_list(t.name, t.datatype, shape, values)
        tensors.append((t.name, t.datatype, shape, arr))
    for o in req.outputs:
        if "classification" in o.parameters:
            raise InvalidRequest("the classification extension is not supported by ort-core serve")
    return tensors, [o.name for o in req.outputs]


def encode_grpc_response(
    pb: Any,
    model: str,
    version: str,
    request_id: str,
    results: Mapping[str, np.ndarray],
    datatypes: Mapping[str, str],
) -> Any:
    """A ModelInferResponse with every output in raw_output_contents (as Triton answers)."""
    resp = pb.ModelInferResponse(model_name=model, model_version=version, id=request_id)
    for name, value in results.items():
        arr = np.asarray(value)
        out = resp.outputs.add()
        out.name = name
        out.datatype = datatypes.get(name) or numpy_to_v2(arr.dtype)
        out.shape.extend(arr.shape)
        resp.raw_output_contents.append(_raw(arr))
    return resp
