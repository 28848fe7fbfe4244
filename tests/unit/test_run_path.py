"""The run path's shortcuts behave as the full checks do: a fed array of a dtype and shape already
checked skips the checks and nothing else does, providers without run hooks are not called around
runs (and kernels still see the run's context), RunOptions runs stop between steps, and outputs
never alias what was fed."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import ort_core as ort
from ort_core import errors
from ort_core.feeds import PlainMaps, RunOwners, finish_at, finish_outputs
from ort_core.provider import ExecutionProvider, KernelProvider, KernelRegistry, current_run
from tests.conftest import make_model, tensor


def _add_model(shape=(2, 3)):
    return make_model(
        [helper.make_node("Add", ["a", "b"], ["c"], name="add")],
        [tensor("a", shape=list(shape)), tensor("b", shape=["N", shape[1]])],
        [tensor("c", shape=["N", shape[1]])],
    ).SerializeToString()


def _message(call):
    with pytest.raises(Exception) as info:
        call()
    return type(info.value), str(info.value)


def test_a_checked_signature_is_remembered_and_nothing_else_passes_with_it():
    sess = ort.InferenceSession(_add_model(), providers=["CPUExecutionProvider"])
    a = np.ones((2, 3), np.float32)
    first = _message(lambda: sess.run(None, {"a": np.ones((3, 3), np.float32), "b": a}))
    for _ in range(3):  # the same signature again: remembered, same result
        np.testing.assert_array_equal(sess.run(None, {"a": a, "b": a})[0], 2 * a)
    assert (2, 3) in sess._accepted["a"][2]
    # every value the shortcut does not cover still gets the full checks and messages
    assert _message(lambda: sess.run(None, {"a": np.ones((3, 3), np.float32), "b": a})) == first
    wrong_dtype = _message(lambda: sess.run(None, {"a": a.astype(np.float64), "b": a}))
    assert wrong_dtype[0] is errors.InvalidArgument and "tensor(double)" in wrong_dtype[1]
    big_endian = a.astype(">f4")
    np.testing.assert_array_equal(sess.run(None, {"a": big_endian, "b": a})[0], 2 * a)
    np.testing.assert_array_equal(sess.run(None, {"a": a.tolist(), "b": a})[0], 2 * a)
    with pytest.warns(PendingDeprecationWarning):
        matrix = np.asmatrix(a)
    np.testing.assert_array_equal(sess.run(None, {"a": matrix, "b": a})[0], 2 * a)
    assert "Invalid input name: z" in _message(lambda: sess.run(None, {"a": a, "b": a, "z": a}))[1]
    assert "Required inputs (['b']) are missing" in _message(lambda: sess.run(None, {"a": a}))[1]


def test_the_usual_run_is_one_call_that_runs_only_what_was_checked_before():
    """``run(None, feed)`` of a session whose inputs are all required tensors goes through
    ``_quick_run``: it runs only a dict of exactly the inputs, each a numpy array of its dtype and
    of a shape the full checks accepted before (else None: the full path runs and checks), and
    hands out outputs as the full path does (a fed array is never an output)."""
    sess = ort.InferenceSession(_add_model(), providers=["CPUExecutionProvider"])
    quick = sess._quick_run
    a, b = np.ones((2, 3), np.float32), np.full((4, 3), 2, np.float32)
    assert quick({"a": a, "b": b}) is None  # a shape not checked yet
    np.testing.assert_array_equal(sess.run(None, {"a": a, "b": a})[0], 2 * a)
    out = quick({"a": a, "b": a})
    np.testing.assert_array_equal(out[0], 2 * a)
    for feed in (
        {"a": a.astype(np.float64), "b": a},
        {"a": a.astype(">f4"), "b": a},
        {"a": a},
        {"a": a, "b": a, "z": a},
        {"a": a.tolist(), "b": a},
        [("a", a), ("b", a)],
    ):
        assert quick(feed) is None
    old = np.geterr()
    ident = make_model(
        [helper.make_node("Identity", ["x"], ["y"]), helper.make_node("Reciprocal", ["x"], ["r"])],
        [tensor("x", shape=[3])],
        [tensor("y", shape=[3]), tensor("r", shape=[3])],
    ).SerializeToString()
    sess = ort.InferenceSession(ident, providers=["CPUExecutionProvider"])
    x = np.array([0, 1, 2], np.float32)
    sess.run(None, {"x": x})
    with np.errstate(divide="raise"):
        y, r = sess._quick_run({"x": x})
        assert np.geterr()["divide"] == "raise"
    assert not np.shares_memory(y, x) and y.flags.writeable and r[0] == np.inf
    assert np.geterr() == old and current_run() is None
    # an input with a default (an initializer it may override) takes the full path
    optional = helper.make_model(
        helper.make_graph(
            [helper.make_node("Add", ["x", "w"], ["y"])],
            "g",
            [tensor("x", shape=[3]), tensor("w", shape=[3])],
            [tensor("y", shape=[3])],
            [helper.make_tensor("w", TensorProto.FLOAT, [3], [1, 2, 3])],
        ),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    optional.ir_version = 8
    sess = ort.InferenceSession(optional.SerializeToString(), providers=["CPUExecutionProvider"])
    assert sess._quick_run is None
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], x + [1, 2, 3])


def test_remembered_shapes_are_bounded():
    sess = ort.InferenceSession(_add_model(), providers=["CPUExecutionProvider"])
    a = np.ones((2, 3), np.float32)
    for n in range(1, 100):
        sess._validate_feed({"a": a, "b": np.ones((n, 3), np.float32)})
    assert len(sess._accepted["b"][2]) == 64
    b = np.ones((99, 3), np.float32)  # not remembered: checked in full, and accepted
    assert sess._validate_feed({"a": a, "b": b})[1] is b


_reg = KernelRegistry("HookTestExecutionProvider")
SEEN: list = []


@_reg.kernel("Relu", since=6)
def _relu(x):
    SEEN.append(current_run())
    if x[0] == FAIL_ON:
        raise errors.RuntimeException("a kernel failed")
    return np.maximum(x, 0)


FAIL_ON = -99  # the first input value on which the test kernel above fails


class _Plain(KernelProvider):
    name = "PlainHookTestExecutionProvider"
    aliases = ("plainhooktest",)
    registry = _reg


class _Hooked(KernelProvider):
    name = "HookedTestExecutionProvider"
    aliases = ("hookedtest",)
    registry = _reg
    calls: list = []

    def on_run_start(self, ctx):
        type(self).calls.append(("start", ctx))

    def on_run_end(self, ctx):
        type(self).calls.append(("end", ctx))


def _relu_model():
    return make_model(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        [tensor("x", shape=[2])],
        [tensor("y", shape=[2])],
    ).SerializeToString()


def test_hooks_are_called_for_providers_that_define_them_only(register_provider):
    register_provider(_Plain, _Hooked)
    x = np.array([-1, 1], np.float32)
    plain = ort.InferenceSession(_relu_model(), providers=["plainhooktest"])
    # the CPU fallback has run hooks of its own (its intra-op threads); the plain provider none
    assert not any(isinstance(ep, _Plain) for ep in plain._hooked)
    SEEN.clear()
    plain.run(None, {"x": x})
    assert len(SEEN) == 1 and SEEN[0] is not None  # kernels see their run's context anyway
    assert current_run() is None
    hooked = ort.InferenceSession(_relu_model(), providers=["hookedtest"])
    assert [type(ep) for ep in hooked._hooked if isinstance(ep, _Hooked)] == [_Hooked]
    _Hooked.calls.clear()
    SEEN.clear()
    hooked.run(None, {"x": x})
    assert [c[0] for c in _Hooked.calls] == ["start", "end"]
    assert _Hooked.calls[0][1] is SEEN[0] is _Hooked.calls[1][1]


def test_one_hooked_provider_runs_on_the_quick_path_with_its_hooks(register_provider):
    """A session whose only hooked provider is one (the CPU provider on one thread is not
    hooked) calls the hooks around the plan without going through ``_execute``: same calls,
    same context, and the end hook runs when a kernel fails."""
    register_provider(_Hooked)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(_relu_model(), so, providers=["hookedtest"])
    assert len(sess._hooked) == 1 and sess._quick_hooks is not None and not sess._quick
    _Hooked.calls.clear()
    SEEN.clear()
    np.testing.assert_array_equal(sess.run(None, {"x": np.array([-1, 2], np.float32)})[0], [0, 2])
    assert [c[0] for c in _Hooked.calls] == ["start", "end"]
    assert _Hooked.calls[0][1] is SEEN[0] is _Hooked.calls[1][1] and current_run() is None
    _Hooked.calls.clear()

    with pytest.raises(errors.RuntimeException, match="a kernel failed"):
        sess.run(None, {"x": np.array([FAIL_ON, 2], np.float32)})
    assert [c[0] for c in _Hooked.calls] == ["start", "end"] and current_run() is None


class _Idle(_Hooked):
    """Hooks that have nothing to do for its sessions: the session never calls them."""

    name = "IdleHookTestExecutionProvider"
    aliases = ("idlehooktest",)

    def wants_run_hooks(self):
        return False


def test_a_provider_whose_hooks_have_nothing_to_do_is_not_called(register_provider):
    register_provider(_Idle)
    sess = ort.InferenceSession(_relu_model(), providers=["idlehooktest"])
    _Hooked.calls.clear()
    SEEN.clear()
    np.testing.assert_array_equal(sess.run(None, {"x": np.array([-1, 2], np.float32)})[0], [0, 2])
    assert _Hooked.calls == [] and len(SEEN) == 1 and SEEN[0] is not None
    assert current_run() is None


def test_a_one_thread_cpu_session_without_blas_kernels_skips_the_run_hooks():
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    relu = ort.InferenceSession(_relu_model(), so, providers=["CPUExecutionProvider"])
    assert relu._hooked == () and relu._quick
    product = make_model(
        [helper.make_node("MatMul", ["a", "b"], ["c"], name="mm")],
        [tensor("a", shape=[2, 2]), tensor("b", shape=[2, 2])],
        [tensor("c", shape=[2, 2])],
    ).SerializeToString()
    mm = ort.InferenceSession(product, so, providers=["CPUExecutionProvider"])
    assert len(mm._hooked) == 1 and not mm._quick  # numpy's BLAS is pinned during its runs
    so.intra_op_num_threads = 2
    two = ort.InferenceSession(_relu_model(), so, providers=["CPUExecutionProvider"])
    assert len(two._hooked) == 1  # the run's pool is entered


def test_a_plan_run_with_fewer_values_keeps_the_other_input_slots():
    """Plan.run pairs values with input slots as zip() does: the slots left over keep their
    base values (subgraph runs pass their inputs and then the outer values)."""
    sess = ort.InferenceSession(_add_model(), providers=["CPUExecutionProvider"])
    plan = sess._plan
    a, b = np.ones((2, 3), np.float32), np.full((2, 3), 2, np.float32)
    np.testing.assert_array_equal(plan.run([a, b])[0], a + b)
    np.testing.assert_array_equal(plan.run([a, b, a])[0], a + b)  # extra values are ignored
    with pytest.raises(errors.RuntimeException, match="add"):  # slot b keeps None: Add fails
        plan.run([a])


def test_an_instance_hook_counts_as_a_hook():
    class P(ExecutionProvider):
        name = "P"

    p = P({})
    from ort_core.session import _has_run_hooks

    assert not _has_run_hooks(p)
    p.on_run_end = lambda ctx: None
    assert _has_run_hooks(p)


_stop_reg = KernelRegistry("StopTestExecutionProvider")


@_stop_reg.kernel("Neg", since=6)
def _neg_and_stop(x):
    options = current_run().run_options
    if options is not None:
        options.terminate = True  # as another thread would, while the run goes on
    return -x


@_stop_reg.kernel("Abs", since=6)
def _abs_fails(x):
    raise ValueError("abs broke")


class _Stopper(KernelProvider):
    name = "StopTestExecutionProvider"
    aliases = ("stoptest",)
    registry = _stop_reg


def test_run_options_runs_stop_between_steps_and_name_a_failing_node(register_provider):
    register_provider(_Stopper)
    m = make_model(
        [
            helper.make_node("Relu", ["x"], ["a"], name="first"),
            helper.make_node("Neg", ["a"], ["b"], name="stopper"),
            helper.make_node("Relu", ["b"], ["y"], name="never"),
        ],
        [tensor("x", shape=[2])],
        [tensor("y", shape=[2])],
    )
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["stoptest"])
    x = np.array([-1, 1], np.float32)
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], [0, 0])  # no RunOptions: no stop
    ro = ort.RunOptions()
    with pytest.raises(errors.RuntimeException) as info:
        sess.run(None, {"x": x}, ro)
    assert str(info.value).endswith(
        "Exiting due to terminate flag being set to true (RunOptions.terminate)."
    )
    ro.terminate = False
    failing = make_model(
        [
            helper.make_node("Relu", ["x"], ["a"], name="first"),
            helper.make_node("Abs", ["a"], ["y"], name="broken_abs"),
        ],
        [tensor("x", shape=[2])],
        [tensor("y", shape=[2])],
    )
    sess = ort.InferenceSession(failing.SerializeToString(), so, providers=["stoptest"])
    for options in (None, ort.RunOptions()):
        with pytest.raises(errors.RuntimeException, match="broken_abs.*ValueError: abs broke"):
            sess.run(None, {"x": x}, options)


def test_outputs_never_alias_inputs_and_owners_are_read_once():
    m = make_model(
        [
            helper.make_node("Identity", ["x"], ["y"], name="id"),
            helper.make_node("Relu", ["x"], ["z"], name="relu"),
        ],
        [tensor("x", shape=[3])],
        [tensor("y", shape=[3]), tensor("z", shape=[3])],
    )
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    base = np.arange(6, dtype=np.float32)
    for x in (base[:3], np.arange(3, dtype=np.float32)):
        y, z = sess.run(None, {"x": x})
        assert not np.shares_memory(y, x) and y.flags.writeable and y.flags.c_contiguous
        np.testing.assert_array_equal(y, x)
        np.testing.assert_array_equal(z, x)

    class Counting(list):
        reads = 0

        def __iter__(self):
            type(self).reads += 1
            return super().__iter__()

    fed = Counting([base])
    outs = finish_outputs([base[1:], np.ones(2, np.float32), [base]], fed)
    assert Counting.reads == 1
    assert not any(np.shares_memory(o, base) for o in (outs[0], outs[2][0]))
    assert "x" not in RunOwners([])  # nothing fed: nothing to find
    # finish_at (the usual run's): fresh-looking results that are fed memory (the owner of a
    # fed view, a fed array after a view) are copied, whichever fed value comes first
    plain = np.ones(2, np.float32)
    for fed in ([base[:3], plain], [plain, base[:3]]):
        outs = finish_at([base, plain, np.zeros(2, np.float32)], [0, 1, 2], fed)
        assert not any(np.shares_memory(o, f) for o in outs for f in fed)
        np.testing.assert_array_equal(outs[0], base)
    # ZipMap's maps: handed out as they are once, copied when the same value comes again
    maps = PlainMaps([{"a": 1.0}, {"a": 2.0}])
    first, second = finish_at([maps], [0, 0], [])
    assert type(first) is list and type(second) is list and first == second == list(maps)
    first[0]["a"] = 9.0
    assert second[0] == {"a": 1.0}


def test_a_dtype_the_model_leaves_open_still_converts():
    m = make_model(
        [helper.make_node("Identity", ["x"], ["y"], name="id")],
        [helper.make_tensor_value_info("x", TensorProto.STRING, [2])],
        [helper.make_tensor_value_info("y", TensorProto.STRING, [2])],
    )
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    assert "x" not in sess._accepted  # strings are converted on every run, never remembered
    for _ in range(2):
        assert sess.run(None, {"x": np.array(["a", "b"])})[0].tolist() == ["a", "b"]


def test_shape_rules_are_remembered_but_errors_are_raised_every_time():
    from ort_core import ops
    from ort_core.ops import _shape

    _shape._MEMO.clear()
    assert ops.reshape_shape((2, 3, 4), [0, -1]) == (2, 12)
    assert ops.reshape_shape((2, 3, 4), np.array([0, -1])) == (2, 12)  # numpy ints, same key
    assert ops.reshape_shape((2, 3, 4), (x for x in (0, -1))) == (2, 12)  # any iterable
    assert len(_shape._MEMO) == 1
    for _ in range(2):  # a reason is never remembered: the error comes every time
        with pytest.raises(errors.InvalidArgument, match="Reshape: shape \\[5\\] .* expected 24"):
            ops.reshape_shape((2, 3, 4), [5])
    assert len(_shape._MEMO) == 1
    assert ops.squeeze_shape((1, 3, 1), None) == (3,) == ops.squeeze_shape((1, 3, 1), [])
    assert ops.unsqueeze_shape((2, 3), [0]) == (1, 2, 3)
    assert ops.split_sizes(10, 3, None, 3) == (4, 4, 2)
    assert ops.tile_shape((2, 3), [2, 1]) == (4, 3)
    ranges = ops.slice_ranges((4, 5), [1], [3], [1], None)
    assert ranges is ops.slice_ranges((4, 5), [1], [3], [1], None)
    assert [tuple(r) for r in ranges] == [(0, 4, 1), (1, 3, 1)]
    unhashable = [np.array(0), np.array(-1)]  # 0-d arrays: computed, never remembered
    assert ops.reshape_shape((2, 3, 4), unhashable) == (2, 12)
    _shape._MEMO_MAX, saved = 2, _shape._MEMO_MAX
    try:
        for n in range(1, 6):
            ops.reshape_shape((n, 2), [-1])
        assert len(_shape._MEMO) <= 2  # bounded
    finally:
        _shape._MEMO_MAX = saved


def test_a_run_gives_ieee_results_without_numpy_warnings_and_restores_the_callers_state():
    """Exp overflowing to inf, 0/0 and log(0) are the kernels' IEEE results, as onnxruntime
    gives them silently: the CPU provider turns numpy's floating-point warnings off for its runs
    (ort_cpu._fp) and puts the caller's error state back afterwards, also after a failed run."""
    import warnings

    nodes = [
        helper.make_node("Exp", ["x"], ["e"]),
        helper.make_node("Div", ["x", "x"], ["d"]),
        helper.make_node("Log", ["x"], ["l"]),
        helper.make_node("Sigmoid", ["x"], ["s"]),
    ]
    model = make_model(
        nodes, [tensor("x", shape=[3])], [tensor(n, shape=[3]) for n in "edls"]
    ).SerializeToString()
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    x = np.array([1000.0, 0.0, -1000.0], np.float32)
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        e, d, lg, s = sess.run(None, {"x": x})
        assert np.geterr()["over"] == "raise"  # the caller's state, back after the run
        add = ort.InferenceSession(_add_model(), providers=["CPUExecutionProvider"])
        with pytest.raises(errors.RuntimeException):  # fails in its kernel: (2, 3) + (5, 3)
            add.run(None, {"a": np.ones((2, 3), np.float32), "b": np.ones((5, 3), np.float32)})
        assert np.geterr()["divide"] == "raise"
    assert e[0] == np.inf and np.isnan(d[1]) and lg[1] == -np.inf
    np.testing.assert_array_equal(s, np.array([1, 0.5, 0], np.float32))


def test_schema_lookup_is_kept_and_a_miss_is_cheap_and_not_kept():
    """Host logic: ``schema_for`` (asked on every run by kernels with optional outputs) keeps
    the schemas it found, tells an op onnx does not know without an exception, respects the
    opset (LayerNormalization is new in 17), and finds a schema registered after a miss."""
    import onnx

    from ort_core.provider import schema

    assert schema.schema_for("SkipLayerNormalization", "com.microsoft", 1) is None
    assert schema.schema_for("LayerNormalization", "", 16) is None
    assert schema.schema_for("LayerNormalization", "", 17).since_version == 17
    assert ("LayerNormalization", "", 17) in schema._SCHEMAS
    assert schema.schema_for("Relu", "", 5).since_version == 1
    domain = "test.schema.later"
    assert schema.schema_for("Later", domain, 1) is None
    onnx.defs.register_schema(
        onnx.defs.OpSchema(
            "Later",
            domain,
            1,
            inputs=[onnx.defs.OpSchema.FormalParameter("x", "T")],
            outputs=[onnx.defs.OpSchema.FormalParameter("y", "T")],
            type_constraints=[("T", ["tensor(float)"], "")],
        )  # fmt: skip
    )
    try:
        assert schema.schema_for("Later", domain, 1).name == "Later"
    finally:
        onnx.defs.deregister_schema("Later", 1, domain)
        schema._SCHEMAS.pop(("Later", domain, 1), None)  # a kept schema outlives its removal
