"""NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss against the ReferenceEvaluator, and the
direct SoftmaxCrossEntropyLoss kernel against the standard's function body."""

import numpy as np
import pytest

from tests.differential.harness import check_node, make_node_model, run_reference


def _case(rng, shape, dtype, ignore):
    n, c = shape[0], shape[1]
    x = rng.standard_normal(shape).astype(dtype)
    t = rng.integers(0, c, (n, *shape[2:])).astype(np.int64)
    if ignore is not None:
        t.reshape(-1)[::3] = ignore
    return x, t


@pytest.mark.parametrize("shape", [(4, 5), (3, 4, 6), (2, 3, 2, 2)])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore", [None, 1])
def test_nll_loss(shape, reduction, weighted, ignore):
    rng = np.random.default_rng(0)
    x, t = _case(rng, shape, np.float32, ignore)
    inputs = [x, t] + ([rng.random(shape[1]).astype(np.float32)] if weighted else [])
    attrs = {"reduction": reduction} | ({"ignore_index": ignore} if ignore is not None else {})
    check_node("NegativeLogLikelihoodLoss", inputs, attrs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(4, 5), (3, 4, 6)])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_softmax_cross_entropy(shape, reduction, dtype):
    rng = np.random.default_rng(1)
    x, t = _case(rng, shape, dtype, None)
    tol = 2e-3 if dtype == np.float16 else 1e-5
    check_node(
        "SoftmaxCrossEntropyLoss", [x, t], {"reduction": reduction}, n_outputs=2, rtol=tol, atol=tol
    )


def test_direct_kernel_matches_function_body():
    """The CPU provider's direct SCE kernel gives what the expanded function body gives."""
    from ort_core.ir import load_model
    from ort_core.plan import build_plan
    from ort_core.plugins import get_plugin_manager

    rng = np.random.default_rng(2)
    x, t = _case(rng, (8, 10, 3), np.float32, 2)
    w = rng.random(10).astype(np.float32)
    model, feed = make_node_model(
        "SoftmaxCrossEntropyLoss",
        [x, t, w],
        {"reduction": "mean", "ignore_index": 2},
        opset=13,
        n_outputs=2,
    )
    cpu_cls = get_plugin_manager().resolve("cpu").cls

    class NoDirectSCE(cpu_cls):
        def get_capability(self, view):
            return [
                c
                for c in super().get_capability(view)
                if c.nodes[0].op_type != "SoftmaxCrossEntropyLoss"
            ]

    direct_m, expanded_m = load_model(model), load_model(model)
    direct = build_plan(direct_m, direct_m.graph, [cpu_cls({})])
    expanded = build_plan(expanded_m, expanded_m.graph, [NoDirectSCE({})])
    assert [s.node.op_type for s in direct.steps] == ["SoftmaxCrossEntropyLoss"]
    assert "NegativeLogLikelihoodLoss" in [s.node.op_type for s in expanded.steps]
    args = [feed["x0"], feed["x1"], feed["x2"]]
    for a, b in zip(direct.run(args), expanded.run(args)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    ref = run_reference(model, feed)
    np.testing.assert_allclose(direct.run(args)[0], ref[0], rtol=1e-5)
