"""ai.onnx.preview.training optimizers (Adagrad, Adam, Momentum) against the ReferenceEvaluator."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from tests.differential.harness import (
    assert_same,
    check_node,
    make_node_model,
    run_cpu,
    run_reference,
)

TRAINING = "ai.onnx.preview.training"
SHAPES = [(), (5,), (3, 4)]


def _tensors(rng, n_tensors, n_roles, dtype, positive_from=None):
    """n_roles groups of n_tensors arrays (X..., G..., ...), shapes cycling through SHAPES."""
    out = []
    for role in range(n_roles):
        for i in range(n_tensors):
            a = rng.standard_normal(SHAPES[i % len(SHAPES)])
            if positive_from is not None and role >= positive_from:
                a = np.abs(a)  # accumulated squared gradients are non-negative
            out.append(np.asarray(a, dtype=dtype))
    return out


def _check(op, rng, n_tensors, n_roles, attrs, dtype, step, positive_from=None):
    r = np.asarray(0.1, dtype=dtype)
    t = np.asarray(step, dtype=np.int64)
    tensors = _tensors(rng, n_tensors, n_roles, dtype, positive_from)
    n_out = n_tensors * (n_roles - 1)
    if op != "Adam":
        check_node(op, [r, t, *tensors], attrs, domain=TRAINING, n_outputs=n_out, rtol=1e-5)
        return
    # onnx's reference Adam returns float32 for several tensors and float64 X for one float32
    # tensor (numpy promotion); the spec says every output has its input's type (T3).
    model, feeds = make_node_model(op, [r, t, *tensors], attrs, domain=TRAINING, n_outputs=n_out)
    got, expected = run_cpu(model, feeds), run_reference(model, feeds)
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g.dtype == dtype, f"output {i}: {g.dtype}"
        assert_same(np.asarray(e).astype(dtype), g, 1e-5, 1e-6, f"Adam output {i}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_tensors", [1, 2, 3])
@pytest.mark.parametrize("step", [0, 3])
@pytest.mark.parametrize(
    "attrs", [{}, {"decay_factor": 0.1, "epsilon": 1e-3, "norm_coefficient": 0.01}]
)
def test_adagrad(dtype, n_tensors, step, attrs):
    rng = np.random.default_rng(n_tensors)
    _check("Adagrad", rng, n_tensors, 3, attrs, dtype, step, positive_from=2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_tensors", [1, 2])
@pytest.mark.parametrize("step", [0, 1, 5])
@pytest.mark.parametrize(
    "attrs",
    [
        {},
        {"alpha": 0.8, "beta": 0.9, "epsilon": 1e-4, "norm_coefficient": 0.02},
        {"norm_coefficient_post": 0.05},
    ],
)
def test_adam(dtype, n_tensors, step, attrs):
    rng = np.random.default_rng(10 + n_tensors)
    _check("Adam", rng, n_tensors, 4, attrs, dtype, step, positive_from=3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_tensors", [1, 2])
@pytest.mark.parametrize("step", [0, 2])
@pytest.mark.parametrize("mode", ["standard", "nesterov"])
def test_momentum(dtype, n_tensors, step, mode):
    rng = np.random.default_rng(20 + n_tensors)
    attrs = {"alpha": 0.9, "beta": 0.5, "norm_coefficient": 0.01, "mode": mode}
    _check("Momentum", rng, n_tensors, 3, attrs, dtype, step)


@pytest.mark.parametrize(
    "op, n_inputs, attrs, needle",
    [
        ("Adagrad", 4, {}, "3 tensors per optimized tensor"),
        ("Adam", 5, {}, "4 tensors per optimized tensor"),
        ("Momentum", 3, {"alpha": 0.9, "beta": 0.1, "norm_coefficient": 0.0, "mode": "x"}, "mode"),
        ("Momentum", 3, {"alpha": 0.9, "mode": "standard"}, "required attribute 'beta'"),
    ],
)
def test_bad_nodes_fail_at_session_creation(op, n_inputs, attrs, needle):
    """Kernels refuse what they cannot run (NotImplemented); a node that breaks its schema, such
    as a missing required attribute, is an InvalidGraph, as onnxruntime reports it."""
    import ort_core
    from ort_core.errors import InvalidGraph
    from ort_core.errors import NotImplemented as OrtNotImplemented

    inputs = [np.asarray(0.1, np.float32), np.asarray(1, np.int64)]
    inputs += [np.ones(3, np.float32)] * (n_inputs - 2)
    model, _ = make_node_model(op, inputs, attrs, domain=TRAINING, n_outputs=1)
    model.graph.node[0].CopyFrom(
        helper.make_node(op, [f"x{i}" for i in range(n_inputs)], ["y0"], domain=TRAINING, **attrs)
    )
    expected = InvalidGraph if "required attribute" in needle else OrtNotImplemented
    with pytest.raises(expected, match=needle):
        ort_core.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
