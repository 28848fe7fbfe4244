"""Differential harness: run one ONNX node on the CPU provider and on onnx's ReferenceEvaluator with
the same random inputs, and compare every output (dtype, shape, values)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator


def make_node_model(
    op_type: str,
    inputs: Sequence[Any],
    attrs: dict[str, Any] | None = None,
    *,
    opset: int | None = None,
    domain: str = "",
    domain_version: int = 1,
    n_outputs: int = 1,
) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """A one-node model whose inputs are named x0, x1... (``None`` = omitted optional input)."""
    opset = opset or onnx.defs.onnx_opset_version()
    in_names, feeds, vis = [], {}, []
    for i, v in enumerate(inputs):
        if v is None:
            in_names.append("")
            continue
        name = f"x{i}"
        in_names.append(name)
        feeds[name] = v
        vis.append(helper.make_value_info(name, _type_of(v)))
    out_names = [f"y{i}" for i in range(n_outputs)]
    node = helper.make_node(op_type, in_names, out_names, domain=domain, **(attrs or {}))
    outs = [helper.make_value_info(n, onnx.TypeProto()) for n in out_names]
    graph = helper.make_graph([node], "g", vis, outs)
    opsets = [helper.make_opsetid("", opset)]
    if domain:
        opsets.append(helper.make_opsetid(domain, domain_version))
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8 if opset <= 17 else onnx.IR_VERSION
    return model, feeds


def _type_of(v: Any) -> onnx.TypeProto:
    if isinstance(v, list):
        elem = _type_of(v[0]) if v else helper.make_tensor_type_proto(onnx.TensorProto.FLOAT, None)
        return helper.make_sequence_type_proto(elem)
    arr = np.asarray(v)
    return helper.make_tensor_type_proto(helper.np_dtype_to_tensor_dtype(arr.dtype), arr.shape)


def run_cpu(model: onnx.ModelProto, feeds: dict[str, Any]) -> list[Any]:
    """Run a model on the CPU provider alone."""
    import ort_core

    sess = ort_core.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def run_reference(model: onnx.ModelProto, feeds: dict[str, Any]) -> list[Any]:
    return list(ReferenceEvaluator(model).run(None, feeds))


def assert_same(expected: Any, got: Any, rtol: float, atol: float, what: str = "output") -> None:
    if isinstance(expected, list):
        assert isinstance(got, list), f"{what}: expected a sequence, got {type(got).__name__}"
        assert len(expected) == len(got), f"{what}: sequence length {len(got)} != {len(expected)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            assert_same(e, g, rtol, atol, f"{what}[{i}]")
        return
    if expected is None:
        assert got is None, f"{what}: expected None, got {type(got).__name__}"
        return
    expected, got = np.asarray(expected), np.asarray(got)
    assert got.dtype == expected.dtype, f"{what}: dtype {got.dtype} != expected {expected.dtype}"
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != expected {expected.shape}"
    if expected.dtype == object or expected.dtype.kind in "biuUSO":
        np.testing.assert_array_equal(got, expected, err_msg=what)
    else:
        np.testing.assert_allclose(
            got.astype(np.float64), expected.astype(np.float64), rtol=rtol, atol=atol, err_msg=what
        )


def check_node(
    op_type: str,
    inputs: Sequence[Any],
    attrs: dict[str, Any] | None = None,
    *,
    opset: int | None = None,
    domain: str = "",
    domain_version: int = 1,
    n_outputs: int = 1,
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> list[Any]:
    """Run ``op_type`` on the CPU provider and on the ReferenceEvaluator; assert equal outputs."""
    model, feeds = make_node_model(
        op_type,
        inputs,
        attrs,
        opset=opset,
        domain=domain,
        domain_version=domain_version,
        n_outputs=n_outputs,
    )
    expected = run_reference(model, feeds)
    got = run_cpu(model, feeds)
    assert len(got) == len(expected), f"{op_type}: {len(got)} outputs, expected {len(expected)}"
    for i, (e, g) in enumerate(zip(expected, got)):
        assert_same(e, g, rtol, atol, f"{op_type} output {i}")
    return got


def use_compiled(monkeypatch, on: bool) -> bool:
    """Sessions made in the test use the CPU provider's compiled kernels (``on``; skips where
    they are off here), or not, as with ORT_CPU_JIT=0."""
    from ort_cpu import _jit

    if not on:
        monkeypatch.setitem(_jit._STATE, "ok", False)
        monkeypatch.setitem(_jit._STATE, "why", "turned off by the test")
        return False
    if not _jit.available():
        pytest.skip(f"compiled kernels are off: {_jit.reason()}")
    return True


def spy_split_compiled(monkeypatch) -> list:
    """Record each call of ``ort_cpu._threads.split_compiled`` as (total, the run's threads,
    whether the pool took it); skips where pools do not spin (no compiled pieces)."""
    from ort_cpu import _threads

    if not _threads.spin_supported():
        pytest.skip("the pool spins only on Linux x86-64 with numba")
    handed: list = []
    original = _threads.split_compiled

    def split_compiled(total, address, argument, min_piece=1, per_thread=1):
        done = original(total, address, argument, min_piece, per_thread)
        handed.append((total, _threads.threads(), done))
        return done

    monkeypatch.setattr(_threads, "split_compiled", split_compiled)
    return handed


def run_one_and_two_threads(model, feeds: dict, monkeypatch) -> tuple[list, list, list]:
    """(outputs at one thread, outputs at two, :func:`spy_split_compiled`'s record of the
    two-thread run) of ``model`` on the CPU provider alone."""
    import ort_core

    got, handed = {}, []
    for threads in (1, 2):
        so = ort_core.SessionOptions()
        so.intra_op_num_threads = threads
        sess = ort_core.InferenceSession(
            model.SerializeToString(), so, providers=["CPUExecutionProvider"]
        )
        if threads == 2:
            handed = spy_split_compiled(monkeypatch)
        got[threads] = sess.run(None, feeds)
    return got[1], got[2], handed
