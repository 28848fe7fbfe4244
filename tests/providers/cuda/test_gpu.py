"""``cuda_gpu``: the CUDA provider on a real NVIDIA GPU, against the CPU provider.

Every test here needs a GPU: without one they skip with the provider's own reason (cupy's), and
``ORT_CUDA_REQUIRE_GPU=1`` (set by ``providers/ort_cuda/gpu_check``) makes that a failure. What
they check: the provider is available and lists the device; the mlp and small models built here
(a Conv/Relu/pool CNN, a LayerNorm/Softmax/GELU transformer block, TopK, Resize,
GatherND/ScatterND, NonMaxSuppression) give the CPU provider's results; IOBinding and OrtValues
keep cupy (and torch) memory on the device with no copy; the memory pool stays flat over many runs
and ``gpu_mem_limit`` is enforced; CUDA-graph replay equals eager runs; concurrent runs on one
session; ``use_tf32``.

Tolerances, as ``max|got - ref| / max|ref|`` against the CPU provider (float64 for the TF32 test):
float32 with ``use_tf32=0``: :data:`TOL_FP32`; float32 with TF32 (onnxruntime's default):
:data:`TOL_TF32`; float16 models against the float32 model on the CPU: :data:`TOL_FP16`. Integer
outputs (TopK indices, NonMaxSuppression) must be equal.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import ort_core
from tests.conftest import make_model, tensor

pytestmark = pytest.mark.cuda_gpu

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"

#: float32, ``use_tf32=0``: only the order of float32 sums differs from the CPU provider
TOL_FP32 = 2e-5
#: float32 GEMMs and convolutions on TF32 tensor cores (10-bit mantissa, float32 accumulation)
TOL_TF32 = 5e-3
#: float16 tensors (accumulation in float32) against the float32 model on the CPU provider
TOL_FP16 = 3e-2

PRECISIONS = {
    "fp32": (np.float32, {"use_tf32": "0"}, TOL_FP32),
    "tf32": (np.float32, {}, TOL_TF32),
    "fp16": (np.float16, {"use_tf32": "0"}, TOL_FP16),
}


# -- helpers ------------------------------------------------------------------------------------
def _session(model, cuda_options=None, so=None, providers=None):
    data = model if isinstance(model, (bytes, str)) else model.SerializeToString()
    if providers is None:
        providers = [(CUDA, dict(cuda_options or {})), CPU]
    return ort_core.InferenceSession(data, so, providers=providers)


def _cpu(model, feeds, so=None):
    return _session(model, so=so, providers=[CPU]).run(None, feeds)


def _cuda_ep(sess):
    """The session's CUDA provider instance (its ``cuda`` is the device: pool, counters)."""
    return next(ep for ep in sess._providers if ep.name == CUDA)


def _rel_err(got, ref) -> float:
    got = np.asarray(got, np.float64)
    ref = np.asarray(ref, np.float64)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    if ref.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(ref))), 1e-30)
    return float(np.max(np.abs(got - ref))) / scale


def _assert_close(got, ref, tol, what=""):
    err = _rel_err(got, ref)
    assert err <= tol, f"{what}: max|got-ref|/max|ref| = {err:.3g} > {tol:g}"


def _cpu_ops(sess) -> set[str]:
    """Op types of the nodes the session left to the CPU provider."""
    return {n.op_type for a in sess.placements if a.ep_name == CPU for n in a.get_nodes()}


def _init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def _elem(dtype) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


# -- models (onnx.helper; random weights) -------------------------------------------------------
def _cnn(dt):
    """Conv+Relu+MaxPool, strided Conv+Relu, GlobalAveragePool, Flatten, Gemm: x[2,3,32,32]."""
    rng = np.random.default_rng(10)

    def w(*shape):
        fan_in = int(np.prod(shape[1:]))
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dt)

    inits = [
        _init("W1", w(16, 3, 3, 3)), _init("B1", (0.1 * rng.standard_normal(16)).astype(dt)),
        _init("W2", w(32, 16, 3, 3)), _init("B2", (0.1 * rng.standard_normal(32)).astype(dt)),
        _init("W3", w(10, 32).T.copy()), _init("B3", (0.1 * rng.standard_normal(10)).astype(dt)),
    ]  # fmt: skip
    nodes = [
        helper.make_node("Conv", ["x", "W1", "B1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "W2", "B2"], ["c2"], name="conv2", pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "W3", "B3"], ["y"], name="fc"),
    ]  # fmt: skip
    e = _elem(dt)
    model = make_model(nodes, [tensor("x", e, [2, 3, 32, 32])], [tensor("y", e, [2, 10])], inits)
    return model, {"x": rng.standard_normal((2, 3, 32, 32)).astype(dt)}


def _transformer(dt, batch=2, seq=16, dim=64, heads=4, hidden=256):
    """Pre-LN block: LayerNorm, 4-head self-attention (MatMul, Softmax), residual, LayerNorm,
    MLP with the Erf form of GELU, residual. x[batch, seq, dim]."""
    rng = np.random.default_rng(11)
    hd = dim // heads

    def w(n_in, n_out):
        return (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dt)

    def vec(n, scale=0.1, offset=0.0):
        return (offset + scale * rng.standard_normal(n)).astype(dt)

    inits = [
        _init("ln1_s", vec(dim, offset=1.0)), _init("ln1_b", vec(dim)),
        _init("ln2_s", vec(dim, offset=1.0)), _init("ln2_b", vec(dim)),
        _init("Wq", w(dim, dim)), _init("Wk", w(dim, dim)), _init("Wv", w(dim, dim)),
        _init("Wo", w(dim, dim)), _init("W1", w(dim, hidden)), _init("b1", vec(hidden)),
        _init("W2", w(hidden, dim)), _init("b2", vec(dim)),
        _init("heads_shape", np.array([0, 0, heads, hd], np.int64)),
        _init("merge_shape", np.array([0, 0, dim], np.int64)),
        _init("scale", np.array(1.0 / np.sqrt(hd), dt)),
        _init("sqrt2", np.array(np.sqrt(2.0), dt)),
        _init("half", np.array(0.5, dt)),
        _init("one", np.array(1.0, dt)),
    ]  # fmt: skip
    mk = helper.make_node
    nodes = [
        mk("LayerNormalization", ["x", "ln1_s", "ln1_b"], ["n1"], name="ln1", axis=-1, epsilon=1e-5),
        mk("MatMul", ["n1", "Wq"], ["q0"], name="q"),
        mk("MatMul", ["n1", "Wk"], ["k0"], name="k"),
        mk("MatMul", ["n1", "Wv"], ["v0"], name="v"),
        mk("Reshape", ["q0", "heads_shape"], ["q1"], name="q_heads"),
        mk("Reshape", ["k0", "heads_shape"], ["k1"], name="k_heads"),
        mk("Reshape", ["v0", "heads_shape"], ["v1"], name="v_heads"),
        mk("Transpose", ["q1"], ["q2"], name="q_t", perm=[0, 2, 1, 3]),
        mk("Transpose", ["k1"], ["k2"], name="k_t", perm=[0, 2, 3, 1]),
        mk("Transpose", ["v1"], ["v2"], name="v_t", perm=[0, 2, 1, 3]),
        mk("MatMul", ["q2", "k2"], ["s0"], name="scores"),
        mk("Mul", ["s0", "scale"], ["s1"], name="scale_scores"),
        mk("Softmax", ["s1"], ["p"], name="softmax", axis=-1),
        mk("MatMul", ["p", "v2"], ["a0"], name="attend"),
        mk("Transpose", ["a0"], ["a1"], name="a_t", perm=[0, 2, 1, 3]),
        mk("Reshape", ["a1", "merge_shape"], ["a2"], name="merge"),
        mk("MatMul", ["a2", "Wo"], ["o"], name="out_proj"),
        mk("Add", ["x", "o"], ["h"], name="residual1"),
        mk("LayerNormalization", ["h", "ln2_s", "ln2_b"], ["n2"], name="ln2", axis=-1, epsilon=1e-5),
        mk("MatMul", ["n2", "W1"], ["m0"], name="fc1"),
        mk("Add", ["m0", "b1"], ["m1"], name="fc1_bias"),
        mk("Div", ["m1", "sqrt2"], ["g0"], name="gelu_div"),
        mk("Erf", ["g0"], ["g1"], name="gelu_erf"),
        mk("Add", ["g1", "one"], ["g2"], name="gelu_add"),
        mk("Mul", ["m1", "g2"], ["g3"], name="gelu_mul"),
        mk("Mul", ["g3", "half"], ["g4"], name="gelu_half"),
        mk("MatMul", ["g4", "W2"], ["m2"], name="fc2"),
        mk("Add", ["m2", "b2"], ["m3"], name="fc2_bias"),
        mk("Add", ["h", "m3"], ["y"], name="residual2"),
    ]  # fmt: skip
    e = _elem(dt)
    shape = [batch, seq, dim]
    model = make_model(nodes, [tensor("x", e, shape)], [tensor("y", e, shape)], inits)
    return model, {"x": rng.standard_normal(shape).astype(dt)}


def _topk(dt):
    rng = np.random.default_rng(12)
    nodes = [helper.make_node("TopK", ["x", "k"], ["values", "indices"], name="topk", axis=-1)]
    e = _elem(dt)
    model = make_model(
        nodes,
        [tensor("x", e, [8, 300])],
        [tensor("values", e, [8, 7]), tensor("indices", TensorProto.INT64, [8, 7])],
        [_init("k", np.array([7], np.int64))],
    )
    # a permutation per row: no ties, so the indices are unique
    x = np.stack([rng.permutation(300) for _ in range(8)]).astype(dt) / np.asarray(300, dt)
    return model, {"x": x}


def _resize(dt):
    """Linear (half_pixel), nearest (asymmetric, floor) to given sizes, cubic: x[1,3,8,8]."""
    rng = np.random.default_rng(13)
    mk = helper.make_node
    nodes = [
        mk("Resize", ["x", "", "scales2"], ["linear"], name="linear", mode="linear"),
        mk("Resize", ["x", "", "", "sizes"], ["nearest"], name="nearest", mode="nearest",
           coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        mk("Resize", ["x", "", "scales15"], ["cubic"], name="cubic", mode="cubic"),
    ]  # fmt: skip
    inits = [
        _init("scales2", np.array([1, 1, 2, 2], np.float32)),
        _init("scales15", np.array([1, 1, 1.5, 1.5], np.float32)),
        _init("sizes", np.array([1, 3, 13, 11], np.int64)),
    ]
    e = _elem(dt)
    model = make_model(
        nodes,
        [tensor("x", e, [1, 3, 8, 8])],
        [tensor("linear", e), tensor("nearest", e), tensor("cubic", e)],
        inits,
    )
    return model, {"x": rng.standard_normal((1, 3, 8, 8)).astype(dt)}


def _gather_scatter(dt):
    rng = np.random.default_rng(14)
    nodes = [
        helper.make_node("GatherND", ["data", "indices"], ["gathered"], name="gathernd"),
        helper.make_node("ScatterND", ["data", "indices", "updates"], ["scattered"], name="scatternd"),
    ]  # fmt: skip
    e = _elem(dt)
    model = make_model(
        nodes,
        [
            tensor("data", e, [4, 5, 6]),
            tensor("indices", TensorProto.INT64, [3, 2]),
            tensor("updates", e, [3, 6]),
        ],
        [tensor("gathered", e), tensor("scattered", e)],
    )
    feeds = {
        "data": rng.standard_normal((4, 5, 6)).astype(dt),
        "indices": np.array([[0, 1], [2, 3], [3, 4]], np.int64),  # unique: ScatterND is exact
        "updates": rng.standard_normal((3, 6)).astype(dt),
    }
    return model, feeds


def _nms(dt, n=200):
    """NonMaxSuppression over 200 random boxes and 2 classes, distinct scores."""
    rng = np.random.default_rng(15)
    y1, x1 = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    h, w = rng.uniform(0.05, 0.3, n), rng.uniform(0.05, 0.3, n)
    boxes = np.stack([y1, x1, y1 + h, x1 + w], -1)[None].astype(dt)
    scores = rng.permutation(2 * n).reshape(1, 2, n).astype(dt) / np.asarray(2 * n, dt)
    nodes = [
        helper.make_node(
            "NonMaxSuppression", ["boxes", "scores", "max_out", "iou", "score_thr"], ["selected"],
            name="nms",
        )
    ]  # fmt: skip
    inits = [
        _init("max_out", np.array([20], np.int64)),
        _init("iou", np.array([0.5], np.float32)),
        _init("score_thr", np.array([0.1], np.float32)),
    ]
    e = _elem(dt)
    model = make_model(
        nodes,
        [tensor("boxes", e, [1, n, 4]), tensor("scores", e, [1, 2, n])],
        [tensor("selected", TensorProto.INT64, ["M", 3])],
        inits,
    )
    return model, {"boxes": boxes, "scores": scores}


#: name -> (builder(dtype) -> (model, feeds), precisions, op types that must run on the GPU)
MODELS = {
    "cnn": (_cnn, ("fp32", "tf32", "fp16"), {"Conv", "MaxPool", "GlobalAveragePool", "Gemm"}),
    "transformer": (
        _transformer,
        ("fp32", "tf32", "fp16"),
        {"LayerNormalization", "MatMul", "Softmax", "Erf", "Transpose"},
    ),
    "topk": (_topk, ("fp32", "fp16"), {"TopK"}),
    "resize": (_resize, ("fp32", "fp16"), {"Resize"}),
    "gather_scatter": (_gather_scatter, ("fp32",), {"GatherND", "ScatterND"}),
    "nms": (_nms, ("fp32",), {"NonMaxSuppression"}),
}
CASES = [(name, p) for name, (_, precisions, _) in MODELS.items() for p in precisions]


# -- the provider and its device ------------------------------------------------------------------
def test_provider_is_available_and_lists_the_gpu(cp):
    assert CUDA in ort_core.get_available_providers()
    assert ort_core.get_device() == "GPU"
    count = cp.cuda.runtime.getDeviceCount()
    devices = [d for d in ort_core.get_ep_devices() if d.ep_name == CUDA]
    assert len(devices) == count >= 1
    for i, d in enumerate(sorted(devices, key=lambda d: d.device.device_id)):
        assert d.device.type == ort_core.OrtHardwareDeviceType.GPU
        assert d.device.vendor_id == 0x10DE and d.device.device_id == i
        assert d.ep_options == {"device_id": str(i)}
        props = cp.cuda.runtime.getDeviceProperties(i)
        assert d.device.metadata["compute_capability"] == f"{props['major']}.{props['minor']}"
        assert int(d.device.metadata["total_memory"]) == props["totalGlobalMem"]


def test_mlp_runs_on_the_gpu_and_matches_the_cpu(mlp_model):
    x = np.random.default_rng(0).standard_normal((64, 4)).astype(np.float32)
    sess = _session(mlp_model, {"use_tf32": "0"})
    assert sess.get_providers()[0] == CUDA
    assert {a.ep_name for a in sess.placements} == {CUDA}
    assert sess.copy_count == 2  # x up, y down: nothing in between visits the host
    ep = _cuda_ep(sess)
    assert ep.cuda.native, ep.cuda
    _assert_close(sess.run(None, {"x": x})[0], _cpu(mlp_model, {"x": x})[0], TOL_FP32, "mlp")


@pytest.mark.parametrize("name, precision", CASES)
def test_small_models_match_the_cpu_provider(name, precision):
    build, _, on_gpu = MODELS[name]
    dt, options, tol = PRECISIONS[precision]
    model, feeds = build(dt)
    sess = _session(model, options)
    left = _cpu_ops(sess) & on_gpu
    assert not left, f"{sorted(left)} ran on the CPU provider: {sess.placement_reasons}"
    got = sess.run(None, feeds)
    if dt == np.float32:
        ref_model, ref_feeds = model, feeds
    else:  # the float32 model on the float32 values of the same inputs
        ref_model, _ = build(np.float32)
        ref_feeds = {k: v.astype(np.float32) if v.dtype == dt else v for k, v in feeds.items()}
    ref = _cpu(ref_model, ref_feeds)
    names = [o.name for o in sess.get_outputs()]
    for out, g, r in zip(names, got, ref):
        assert g.dtype == (dt if r.dtype.kind == "f" else r.dtype), out
        if r.dtype.kind in "iub":
            np.testing.assert_array_equal(g, r, err_msg=f"{name}/{out}")
        else:
            _assert_close(g, r, tol, f"{name}/{out} ({precision})")


def test_transformer_block_unoptimized_matches_too():
    """The block node by node (no fusions): LayerNormalization, Softmax and the Erf chain run as
    the provider's kernels and fused elementwise chains rather than as fused contrib ops."""
    model, feeds = _transformer(np.float32)
    so = ort_core.SessionOptions()
    so.graph_optimization_level = ort_core.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = _session(model, {"use_tf32": "0"}, so=so)
    assert not _cpu_ops(sess) & {"LayerNormalization", "MatMul", "Softmax", "Erf", "Mul"}
    _assert_close(sess.run(None, feeds)[0], _cpu(model, feeds, so)[0], TOL_FP32, "transformer")


# -- IOBinding, OrtValue, DLPack ----------------------------------------------------------------
def test_iobinding_with_cupy_inputs_and_cuda_outputs_never_touches_the_host(cp, mlp_model):
    sess = _session(mlp_model, {"use_tf32": "0"})
    dev = _cuda_ep(sess).cuda
    rng = np.random.default_rng(1)
    for bind_by in ("ortvalue", "array", "address"):
        x = rng.standard_normal((32, 4)).astype(np.float32)
        xc = cp.asarray(x)
        io = sess.io_binding()
        if bind_by == "ortvalue":
            xv = ort_core.OrtValue.from_dlpack(xc)
            assert xv.device_name() == "cuda" and xv.data_ptr() == xc.data.ptr
            io.bind_ortvalue_input("x", xv)
        elif bind_by == "array":  # the provider's own array in place of an address
            io.bind_input("x", "cuda", 0, np.float32, list(x.shape), xc)
        else:  # a bare device address, as onnxruntime users pass data_ptr()
            io.bind_input("x", "cuda", 0, np.float32, list(x.shape), xc.data.ptr)
        io.bind_output("y", "cuda")
        cp.cuda.Device().synchronize()
        up, down = dev.uploads, dev.downloads
        sess.run_with_iobinding(io)
        (yv,) = io.get_outputs()
        assert (dev.uploads - up, dev.downloads - down) == (0, 0), bind_by
        assert yv.device_name() == "cuda"
        yc = cp.from_dlpack(yv)  # the output's memory, no copy
        assert isinstance(yc, cp.ndarray) and yc.data.ptr == yv.data_ptr()
        _assert_close(cp.asnumpy(yc), _cpu(mlp_model, {"x": x})[0], TOL_FP32, bind_by)
        # more runs with the same bindings: still no copy in either direction
        for _ in range(3):
            sess.run_with_iobinding(io)
        assert (dev.uploads - up, dev.downloads - down) == (0, 0), bind_by


def test_ortvalue_on_cuda_from_numpy_and_dlpack_with_cupy(cp):
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    ov = ort_core.OrtValue.ortvalue_from_numpy(x, "cuda", 0)
    assert ov.device_name() == "cuda" and ov.shape() == [2, 3, 4]
    np.testing.assert_array_equal(ov.numpy(), x)
    # OrtValue -> cupy: the same device memory
    view = cp.from_dlpack(ov)
    assert view.data.ptr == ov.data_ptr()
    view[0, 0, 0] = -1.0
    cp.cuda.Device().synchronize()
    assert ov.numpy()[0, 0, 0] == -1.0
    # cupy -> OrtValue: the same device memory
    xc = cp.arange(10, dtype=cp.float32)
    ov2 = ort_core.OrtValue.from_dlpack(xc)
    assert ov2.device_name() == "cuda" and ov2.data_ptr() == xc.data.ptr
    xc[3] = 42.0
    cp.cuda.Device().synchronize()
    assert ov2.numpy()[3] == 42.0
    # and such a value feeds a session's run without a copy up
    model = make_model(
        [helper.make_node("Neg", ["x"], ["y"])], [tensor("x", shape=[10])], [tensor("y")]
    )
    sess = _session(model)
    io = sess.io_binding()
    io.bind_ortvalue_input("x", ov2)
    io.bind_output("y", "cuda")
    sess.run_with_iobinding(io)
    np.testing.assert_array_equal(io.copy_outputs_to_cpu()[0], -cp.asnumpy(xc))


def test_dlpack_with_torch(cp):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here (a CPU-only torch build)")
    t = torch.arange(12, dtype=torch.float32, device="cuda").reshape(3, 4)
    torch.cuda.synchronize()
    ov = ort_core.OrtValue.from_dlpack(t)
    assert ov.device_name() == "cuda" and ov.data_ptr() == t.data_ptr()
    np.testing.assert_array_equal(ov.numpy(), np.arange(12, dtype=np.float32).reshape(3, 4))
    back = torch.from_dlpack(ov)
    assert back.device.type == "cuda" and back.data_ptr() == t.data_ptr()
    # an output computed by the provider goes to torch without a copy
    model = make_model(
        [helper.make_node("Relu", ["x"], ["y"])], [tensor("x", shape=[3, 4])], [tensor("y")]
    )
    sess = _session(model)
    io = sess.io_binding()
    io.bind_ortvalue_input("x", ov)
    io.bind_output("y", "cuda")
    sess.run_with_iobinding(io)
    (yv,) = io.get_outputs()
    y = torch.from_dlpack(yv)
    assert y.data_ptr() == yv.data_ptr()
    assert torch.equal(y, torch.relu(t))


# -- memory ---------------------------------------------------------------------------------------
def test_memory_pool_stays_flat_over_many_runs():
    model, feeds = _cnn(np.float32)
    sess = _session(model, {"use_tf32": "0"})
    pool = _cuda_ep(sess).cuda.pool
    used, total = [], []
    for _ in range(200):
        sess.run(None, feeds)
        used.append(pool.used_bytes())
        total.append(pool.total_bytes())
    warm, slack = 10, 1 << 20  # one leaked run of this model would hold about 0.3 MiB
    assert max(used[warm:]) <= used[warm - 1] + slack, (used[warm - 1], max(used[warm:]))
    assert max(total[warm:]) <= total[warm - 1] + slack, (total[warm - 1], max(total[warm:]))
    assert used[-1] <= used[warm - 1] + slack
    # memory.enable_memory_arena_shrinkage returns the pool's free blocks after the run
    free_before = total[-1] - used[-1]
    ro = ort_core.RunOptions()
    ro.add_run_config_entry("memory.enable_memory_arena_shrinkage", "gpu:0")
    sess.run(None, feeds, ro)
    free_after = pool.total_bytes() - pool.used_bytes()
    assert free_after < free_before or free_before == 0, (free_before, free_after)


def test_gpu_mem_limit_too_small_is_an_error_naming_it():
    model = make_model(
        [helper.make_node("MatMul", ["a", "b"], ["y"])],
        [tensor("a", shape=[1024, 1024]), tensor("b", shape=[1024, 1024])],
        [tensor("y")],
    )
    x = np.ones((1024, 1024), np.float32)  # 4 MiB per input, past a 1 MiB limit
    sess = _session(model, {"gpu_mem_limit": str(1 << 20)})
    assert sess.get_provider_options()[CUDA]["gpu_mem_limit"] == str(1 << 20)
    with pytest.raises(ort_core.errors.OrtError, match="gpu_mem_limit"):
        sess.run(None, {"a": x, "b": x})
    # the same model runs with a limit that fits
    ok = _session(model, {"gpu_mem_limit": str(64 << 20)})
    np.testing.assert_allclose(ok.run(None, {"a": x, "b": x})[0], x @ x, rtol=1e-2)


# -- CUDA graphs ------------------------------------------------------------------------------------
def _graph_model():
    model, _ = _transformer(np.float32)
    return model


def _run_id(graph_id):
    ro = ort_core.RunOptions()
    ro.add_run_config_entry("gpu_graph_id", str(graph_id))
    return ro


def test_cuda_graph_replay_equals_eager_runs():
    model = _graph_model()
    graph = _session(model, {"enable_cuda_graph": "1", "use_tf32": "0"})
    eager = _session(model, {"use_tf32": "0"})
    assert {a.ep_name for a in graph.placements} == {CUDA}
    rng = np.random.default_rng(3)
    # graph id 0: warm-up run, capture, then replays, each with new input values
    for k in range(6):
        x = rng.standard_normal((2, 16, 64)).astype(np.float32)
        got = graph.run(None, {"x": x})[0]
        _assert_close(got, eager.run(None, {"x": x})[0], TOL_FP32, f"run {k}")
    # the outputs of a replay are the run's own, in device memory: the next replay (which
    # writes the graph's output buffers again) leaves them as they were
    a = rng.standard_normal((2, 16, 64)).astype(np.float32)
    b = rng.standard_normal((2, 16, 64)).astype(np.float32)
    outs = []
    for x in (a, b):
        io = graph.io_binding()
        io.bind_cpu_input("x", x)
        io.bind_output("y", "cuda")
        graph.run_with_iobinding(io)
        outs.append(io.get_outputs()[0])
    ya, yb = outs[0].numpy(), outs[1].numpy()
    _assert_close(ya, eager.run(None, {"x": a})[0], TOL_FP32, "first of two replays")
    _assert_close(yb, eager.run(None, {"x": b})[0], TOL_FP32, "second of two replays")
    assert outs[0].data_ptr() != outs[1].data_ptr()


def test_cuda_graph_ids_and_the_shape_change_error():
    rng = np.random.default_rng(4)
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"]),
        helper.make_node("Relu", ["h"], ["y"]),
    ]
    w = _init("W", rng.standard_normal((32, 16)).astype(np.float32))
    model = make_model(nodes, [tensor("x", shape=["N", 32])], [tensor("y")], [w])
    graph = _session(model, {"enable_cuda_graph": "1", "use_tf32": "0"})
    eager = _session(model, {"use_tf32": "0"})
    for _ in range(4):  # id 0: batch 8
        x = rng.standard_normal((8, 32)).astype(np.float32)
        _assert_close(
            graph.run(None, {"x": x}, _run_id(0))[0], eager.run(None, {"x": x})[0], TOL_FP32
        )
    for _ in range(4):  # id 1: batch 3, its own graph
        x = rng.standard_normal((3, 32)).astype(np.float32)
        _assert_close(
            graph.run(None, {"x": x}, _run_id(1))[0], eager.run(None, {"x": x})[0], TOL_FP32
        )
    x = rng.standard_normal((8, 32)).astype(np.float32)  # id 0 still replays its own graph
    _assert_close(graph.run(None, {"x": x}, _run_id(0))[0], eager.run(None, {"x": x})[0], TOL_FP32)
    # -1: an eager run, any shape
    x5 = rng.standard_normal((5, 32)).astype(np.float32)
    _assert_close(
        graph.run(None, {"x": x5}, _run_id(-1))[0], eager.run(None, {"x": x5})[0], TOL_FP32
    )
    with pytest.raises(ort_core.errors.OrtError, match="gpu_graph_id"):
        graph.run(None, {"x": x5}, _run_id(0))


# -- streams and threads ------------------------------------------------------------------------
def test_two_threads_share_one_session():
    model, _ = _transformer(np.float32)
    sess = _session(model, {"use_tf32": "0"})
    rng = np.random.default_rng(5)
    inputs = [rng.standard_normal((2, 16, 64)).astype(np.float32) for _ in range(8)]
    expected = [_cpu(model, {"x": x})[0] for x in inputs]
    barrier = threading.Barrier(2)
    errors: list[str] = []

    def job(offset):
        barrier.wait()
        for k in range(40):
            i = (k + offset) % len(inputs)
            got = sess.run(None, {"x": inputs[i]})[0]
            err = _rel_err(got, expected[i])
            if err > TOL_FP32:
                errors.append(f"thread {offset} run {k} input {i}: {err:.3g}")

    threads = [threading.Thread(target=job, args=(t * 3,)) for t in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]


# -- TF32 -----------------------------------------------------------------------------------------
def test_use_tf32_changes_float32_matmul_precision():
    n = 2048
    rng = np.random.default_rng(6)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    model = make_model(
        [helper.make_node("MatMul", ["a", "b"], ["y"])],
        [tensor("a", shape=[n, n]), tensor("b", shape=[n, n])],
        [tensor("y")],
    )
    ref = a.astype(np.float64) @ b.astype(np.float64)
    fp32 = _session(model, {"use_tf32": "0"}).run(None, {"a": a, "b": b})[0]
    tf32 = _session(model, {"use_tf32": "1"}).run(None, {"a": a, "b": b})[0]
    err32, errtf = _rel_err(fp32, ref), _rel_err(tf32, ref)
    assert err32 < 1e-5, err32
    assert errtf < TOL_TF32, errtf
    # TF32 keeps 10 mantissa bits of each factor: far further from float64 than float32 is
    assert errtf > 10 * err32, (errtf, err32)
