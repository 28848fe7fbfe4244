"""The CUDA provider's host logic, on a stand-in device (see ``_standin.py``): options,
availability, capability with the real kernel registry, shape arithmetic kept on the host, copy
placement, a stream per run, IOBinding and OrtValues on "cuda". What runs on the stand-in is the
provider's own Python and the shared array-API kernels; none of this proves CUDA behaviour (the
``cuda_gpu`` tests and the GPU check do)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from onnx import TensorProto, helper
from ort_cuda import options
from ort_cuda.provider import CUDAExecutionProvider

import ort_core
from ort_core.errors import InvalidArgument
from tests.conftest import make_model, tensor

CUDA = "CUDAExecutionProvider"


def _session(model, providers=None, optimize=False):
    so = ort_core.SessionOptions()
    if not optimize:
        so.graph_optimization_level = ort_core.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort_core.InferenceSession(
        model.SerializeToString(), so, providers=providers or [CUDA, "CPUExecutionProvider"]
    )


def _placements(sess):
    out = {}
    for a in sess.placements:
        for n in a.get_nodes():
            out[n.name or n.op_type] = a.ep_name
    return out


def _cpu(model, feeds):
    sess = ort_core.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


# -- availability and options (no device needed) ----------------------------------------------
def test_unavailable_here_with_cupys_reason():
    avail = CUDAExecutionProvider.availability()
    if avail:
        pytest.skip("a CUDA device is usable here")
    assert avail.reason and "cupy" in avail.reason


def test_a_session_asking_for_cuda_falls_back_with_the_reason(mlp_model):
    if CUDAExecutionProvider.availability():
        pytest.skip("a CUDA device is usable here")
    with pytest.warns(RuntimeWarning, match="CUDAExecutionProvider.*cupy"):
        sess = _session(mlp_model)
    assert sess.get_providers() == ["CPUExecutionProvider"]


def test_options_parse_onnxruntime_spellings():
    o = options.parse(
        {
            "device_id": "0",
            "gpu_mem_limit": str(2 * 1024**3),
            "arena_extend_strategy": "kSameAsRequested",
            "cudnn_conv_algo_search": "HEURISTIC",
            "do_copy_in_default_stream": "0",
            "enable_cuda_graph": "1",
            "use_tf32": "0",
            "prefer_nhwc": "0",
        }
    )
    assert o.gpu_mem_limit == 2 * 1024**3 and not o.arena_power_of_two
    assert o.cudnn_conv_algo_search == "HEURISTIC" and not o.do_copy_in_default_stream
    assert o.enable_cuda_graph and not o.use_tf32
    assert options.parse({"arena_extend_strategy": "1"}).arena_power_of_two is False
    assert options.parse({"cudnn_conv_algo_search": "2"}).cudnn_conv_algo_search == "DEFAULT"
    assert options.parse({"gpu_mem_limit": str(options.SIZE_MAX)}).gpu_mem_limit == 0
    assert options.parse({}) == options.CudaOptions()


@pytest.mark.parametrize(
    "opts, match",
    [
        ({"no_such_option": "1"}, r"does not know the option\(s\) \['no_such_option'\]"),
        ({"cudnn_conv_algo_search": "FAST"}, "EXHAUSTIVE or HEURISTIC or DEFAULT"),
        ({"arena_extend_strategy": "2"}, "kNextPowerOfTwo or kSameAsRequested"),
        ({"gpu_mem_limit": "-1"}, "an integer from 0"),
        ({"use_tf32": "yes"}, "0 or 1"),
        ({"prefer_nhwc": "1"}, "no NHWC layout transformer"),
        ({"tunable_op_enable": "1"}, "no TunableOp"),
        ({"has_user_compute_stream": "1"}, "needs user_compute_stream"),
    ],
)
def test_bad_options_are_errors_naming_the_option(opts, match):
    with pytest.raises(InvalidArgument, match=match):
        options.parse(opts)


def test_bad_option_fails_session_creation_before_the_device(standin, mlp_model):
    with pytest.raises(ValueError, match="cudnn_conv_algo_search"):
        _session(mlp_model, providers=[(CUDA, {"cudnn_conv_algo_search": "x"})])


# -- on the stand-in device -------------------------------------------------------------------
def test_runs_a_model_and_matches_the_cpu(standin, mlp_model):
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    sess = _session(mlp_model)
    assert sess.get_providers()[0] == CUDA
    assert set(_placements(sess).values()) == {CUDA}
    # the elementwise chain Add -> Relu is one fused node (one generated kernel on a GPU)
    kinds = sorted(len(a.get_nodes()) for a in sess.placements)
    assert kinds == [1, 2]
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], _cpu(mlp_model, {"x": x})[0], 1e-6)
    dev = standin[0]
    # constants went up once at session creation; per run: one input up, one output down
    up, down = dev.uploads, dev.downloads
    sess.run(None, {"x": x})
    assert (dev.uploads - up, dev.downloads - down) == (1, 1)


def test_provider_options_reach_the_device(standin, mlp_model):
    sess = _session(
        mlp_model,
        providers=[
            (CUDA, {"gpu_mem_limit": "1048576", "arena_extend_strategy": "kSameAsRequested"})
        ],
    )
    opts = sess.get_provider_options()[CUDA]
    assert (
        opts["gpu_mem_limit"] == "1048576" and opts["arena_extend_strategy"] == "kSameAsRequested"
    )
    assert standin[0].memory.gpu_mem_limit == 1048576


def _reshape_by_shape_model():
    """y = Relu(Reshape(x, concat(shape(x)[0], -1))): shape arithmetic feeding a host input."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"], name="unsqueeze"),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["r"], name="reshape"),
        helper.make_node("Relu", ["r"], ["y"], name="relu"),
    ]
    inits = [
        helper.make_tensor("zero", TensorProto.INT64, [], [0]),
        helper.make_tensor("ax0", TensorProto.INT64, [1], [0]),
        helper.make_tensor("minus1", TensorProto.INT64, [1], [-1]),
    ]
    return make_model(nodes, [tensor("x", shape=["N", 3, 4])], [tensor("y")], inits)


def test_shape_arithmetic_stays_on_the_host(standin):
    model = _reshape_by_shape_model()
    so = ort_core.SessionOptions()
    so.graph_optimization_level = ort_core.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort_core.InferenceSession(
        model.SerializeToString(), so, providers=[CUDA, "CPUExecutionProvider"]
    )
    p = _placements(sess)
    assert p["shape"] == CUDA and p["reshape"] == CUDA and p["relu"] == CUDA
    assert p["gather"] == p["unsqueeze"] == p["concat"] == "CPUExecutionProvider"
    # the only copies of a run: x up, y down (the shape never visits the device)
    assert sess.copy_count == 2
    x = np.random.default_rng(1).standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], np.maximum(x.reshape(2, -1), 0))


def test_nodes_that_read_host_values_as_host_inputs_stay_on_the_device(standin):
    """ConstantOfShape reads its shape on the host: it runs on the device, no copy of the shape."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node(
            "ConstantOfShape", ["s"], ["c"], name="cos",
            value=helper.make_tensor("v", TensorProto.FLOAT, [1], [2.0]),
        ),
        helper.make_node("Mul", ["x", "c"], ["y"], name="mul"),
    ]  # fmt: skip
    model = make_model(nodes, [tensor("x", shape=[2, 3])], [tensor("y")])
    so = ort_core.SessionOptions()
    so.graph_optimization_level = ort_core.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort_core.InferenceSession(model.SerializeToString(), so, providers=[CUDA])
    assert set(_placements(sess).values()) == {CUDA}
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], 2 * x)


def test_every_kernel_runs_inside_the_runs_stream(standin, mlp_model):
    sess = _session(mlp_model)
    dev = standin[0]
    x = np.ones((2, 4), np.float32)
    sess.run(None, {"x": x})
    (stream,) = dev.streams_made
    # MatMul, then Add+Relu fused into one generated kernel (run op by op on the stand-in)
    assert stream.kernels == 2 and stream.syncs >= 1
    assert stream.copies == ["h2d", "d2h"]
    sess.run(None, {"x": x})  # the stream is reused by the next run
    assert dev.streams_made == [stream] and stream.kernels == 4


def test_concurrent_runs_get_their_own_streams(standin, mlp_model):
    sess = _session(mlp_model)
    dev = standin[0]
    barrier = threading.Barrier(2)
    x = np.ones((2, 4), np.float32)
    seen = []

    def job():
        barrier.wait()
        for _ in range(20):
            seen.append(sess.run(None, {"x": x})[0])

    threads = [threading.Thread(target=job) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 40 and all(np.array_equal(s, seen[0]) for s in seen)
    assert 1 <= len(dev.streams_made) <= 2
    assert sum(s.kernels for s in dev.streams_made) == 80  # two kernel calls per run


def test_copies_on_a_separate_stream_are_ordered_by_events(standin, mlp_model):
    sess = _session(mlp_model, providers=[(CUDA, {"do_copy_in_default_stream": "0"})])
    dev = standin[0]
    sess.run(None, {"x": np.ones((2, 4), np.float32)})
    compute = next(s for s in dev.streams_made if s.kernels)
    copy = next(s for s in dev.streams_made if s.copies)
    assert compute is not copy and compute.copies == [] and copy.copies == ["h2d", "d2h"]
    # the compute stream waited for the upload; the download waited for the compute stream
    assert [e.stream for e in compute.waits] == [copy]
    assert [e.stream for e in copy.waits] == [compute]


def test_user_compute_stream_and_unified_stream(standin, mlp_model):
    x = np.ones((2, 4), np.float32)
    sess = _session(mlp_model, providers=[(CUDA, {"user_compute_stream": "12345"})])
    sess.run(None, {"x": x})
    sess.run(None, {"x": x})
    assert standin[0].streams_made == []  # every run used the user's stream
    assert sess.get_provider_options()[CUDA]["has_user_compute_stream"] == "1"
    sess2 = _session(mlp_model, providers=[(CUDA, {"use_ep_level_unified_stream": "1"})])
    made = len(standin[0].streams_made)
    for _ in range(3):
        sess2.run(None, {"x": x})
    assert len(standin[0].streams_made) == made  # one stream for the provider, taken at creation


def test_iobinding_keeps_values_on_the_device(standin, mlp_model):
    sess = _session(mlp_model)
    dev = standin[0]
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    xv = ort_core.OrtValue.ortvalue_from_numpy(x, "cuda", 0)
    assert xv.device_name() == "cuda"
    io = sess.io_binding()
    io.bind_ortvalue_input("x", xv)
    io.bind_output("y", "cuda")
    up, down = dev.uploads, dev.downloads
    sess.run_with_iobinding(io)
    (yv,) = io.get_outputs()
    assert yv.device_name() == "cuda"
    assert (dev.uploads - up, dev.downloads - down) == (0, 0)
    np.testing.assert_allclose(yv.numpy(), _cpu(mlp_model, {"x": x})[0], 1e-6)


def test_a_kernel_called_outside_a_run_is_an_error(standin):
    from ort_core.errors import EPFail
    from ort_core.ir import Node
    from ort_core.provider import KernelInfo

    prov = CUDAExecutionProvider()
    info = KernelInfo(Node("Relu", ["a"], ["b"]), 14, [None], [None], {}, provider=prov)
    fn = prov.create_kernel(info)
    with pytest.raises(EPFail, match="outside a run"):
        fn(standin[0].xp.asarray([1.0]))


def test_get_capability_reports_what_it_leaves(standin):
    """Nodes the provider declines carry its reason (strings have no device arrays here)."""
    nodes = [
        helper.make_node("StringNormalizer", ["s"], ["t"], name="norm", case_change_action="UPPER")
    ]
    model = make_model(
        nodes, [tensor("s", TensorProto.STRING, [2])], [tensor("t", TensorProto.STRING)]
    )
    sess = _session(model)
    assert _placements(sess)["norm"] == "CPUExecutionProvider"
    assert any(CUDA in r for r in sess.placement_reasons["norm"])


def test_conv_without_cudnn_runs_as_im2col_on_the_device(standin):
    """Conv's cuDNN path needs a native device and cuDNN's frontend; otherwise the provider's
    Conv kernel is the shared im2col + GEMM one, on the device, equal to the CPU's result."""
    from ort_cuda.kernels.conv import cudnn_reason

    from ort_core.ir import Node
    from ort_core.provider import KernelInfo

    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    nodes = [
        helper.make_node(
            "Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1], strides=[2, 2]
        ),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    inits = [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel()),
             helper.make_tensor("b", TensorProto.FLOAT, b.shape, b)]  # fmt: skip
    model = make_model(nodes, [tensor("x", shape=[1, 3, 9, 9])], [tensor("y")], inits)
    sess = _session(model)
    assert _placements(sess) == {"conv": CUDA, "relu": CUDA}
    x = rng.standard_normal((1, 3, 9, 9)).astype(np.float32)
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], _cpu(model, {"x": x})[0], 1e-5, 1e-5)
    prov = CUDAExecutionProvider()
    info = KernelInfo(Node("Conv", ["x", "w"], ["y"]), 22, [None, None], [None], {}, provider=prov)
    assert "stand-in" in cudnn_reason(info)


def test_import_and_availability_without_cupy():
    """Host logic: with cupy absent, importing the provider (and every kernel module) works and
    the provider is unavailable with the install hint, in a fresh process."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['cupy'] = None\n"
        "import ort_cuda.provider as p, ort_cuda.kernels\n"
        "a = p.CUDAExecutionProvider.availability()\n"
        "print(bool(a), a.reason)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("False cupy cannot be imported")
    assert "ort-core[cuda]" in out.stdout
