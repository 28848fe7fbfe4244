"""extra_options["SmoothQuant"]: the smoothed model computes the same function, quantizes with
less error when activations have outlier channels, and runs in onnxruntime."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ort_core import quantization as oq
from ort_core.quantization.smooth_quant import smooth_model

from .conftest import Reader, core_run, ort, ort_run

D, FF = 32, 48
OUTLIERS = {3: 80.0, 11: 40.0, 25: 100.0, 30: 30.0}  # LayerNorm scale: channel -> factor


def _w(rng, name, shape, scale):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def block(seed: int = 0) -> onnx.ModelProto:
    """x[N,8,D] -> LayerNorm (a few channels 30-100x the rest) -> q_proj (MatMul+Add) and
    v_proj (MatMul) -> h = q + v -> ff1 (MatMul+Add) -> ff2 (MatMul+Add) -> y = ff2 + h.

    The weight rows of the outlier channels are as much smaller, so every channel contributes to
    q and v alike (as in the language models SmoothQuant was made for): quantizing ln per tensor
    then loses the ordinary channels. Smoothing folds into the LayerNorm (ln read by q_proj and v_proj only) and into ff1 (f read
    by ff2 only); h (an Add's output, also read by the residual) needs an inserted Mul."""
    rng = np.random.default_rng(seed)
    gamma = (1 + 0.1 * rng.standard_normal(D)).astype(np.float32)
    for c, f in OUTLIERS.items():
        gamma[c] *= f
    s = 1 / np.sqrt(D)
    wq, wv = (rng.standard_normal((D, D)) * s for _ in range(2))
    for c, f in OUTLIERS.items():
        wq[c] /= f
        wv[c] /= f
    inits = [
        numpy_helper.from_array(gamma, "ln.g"),
        _w(rng, "ln.b", [D], 0.1),
        numpy_helper.from_array(wq.astype(np.float32), "wq"),
        _w(rng, "bq", [D], 0.05),
        numpy_helper.from_array(wv.astype(np.float32), "wv"),
        _w(rng, "w1", [D, FF], s),
        _w(rng, "b1", [FF], 0.05),
        _w(rng, "w2", [FF, D], 1 / np.sqrt(FF)),
        _w(rng, "b2", [D], 0.05),
    ]
    mk = helper.make_node
    nodes = [
        mk("LayerNormalization", ["x", "ln.g", "ln.b"], ["ln"], "ln", axis=-1),
        mk("MatMul", ["ln", "wq"], ["q0"], "q_proj"),
        mk("Add", ["q0", "bq"], ["q"], "q_bias"),
        mk("MatMul", ["ln", "wv"], ["v"], "v_proj"),
        mk("Add", ["q", "v"], ["h"], "qv"),
        mk("MatMul", ["h", "w1"], ["f0"], "ff1"),
        mk("Add", ["f0", "b1"], ["f"], "ff1_bias"),
        mk("MatMul", ["f", "w2"], ["y0"], "ff2"),
        mk("Add", ["y0", "b2"], ["y1"], "ff2_bias"),
        mk("Add", ["y1", "h"], ["y"], "residual"),
    ]
    graph = helper.make_graph(
        nodes,
        "block",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8, D])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8, D])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def gemm_conv(seed: int = 0) -> onnx.ModelProto:
    """Gemm (transB=1) -> Gemm (scalar C) and Conv3x3 -> Conv1x1 -> Conv1x1, side by side."""
    rng = np.random.default_rng(seed)
    inits = [
        _w(rng, "g1.w", [24, 16], 0.3),
        _w(rng, "g1.b", [24], 0.1),
        _w(rng, "g2.w", [24, 6], 0.3),
        numpy_helper.from_array(np.array(0.25, np.float32), "g2.c"),
        _w(rng, "c1.w", [8, 4, 3, 3], 0.3),
        _w(rng, "c1.b", [8], 0.1),
        _w(rng, "c2.w", [6, 8, 1, 1], 0.3),
        _w(rng, "c3.w", [5, 6, 1, 1], 0.3),
    ]
    mk = helper.make_node
    nodes = [
        mk("Gemm", ["a", "g1.w", "g1.b"], ["g1"], "gemm1", transB=1),
        mk("Gemm", ["g1", "g2.w", "g2.c"], ["ya"], "gemm2", alpha=0.5, beta=2.0),
        mk("Conv", ["b", "c1.w", "c1.b"], ["c1"], "conv1", pads=[1, 1, 1, 1]),
        mk("Conv", ["c1", "c2.w"], ["c2"], "conv2"),
        mk("Relu", ["c2"], ["r2"], "relu"),
        mk("Conv", ["r2", "c3.w"], ["yb"], "conv3"),
    ]
    graph = helper.make_graph(
        nodes,
        "gemm_conv",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 16]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 4, 6, 6]),
        ],
        [
            helper.make_tensor_value_info("ya", TensorProto.FLOAT, ["N", 6]),
            helper.make_tensor_value_info("yb", TensorProto.FLOAT, ["N", 5, 6, 6]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _feeds(model: onnx.ModelProto, n: int, seed: int, batch: int = 4) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        feed = {}
        for vi in model.graph.input:
            dims = [d.dim_value or batch for d in vi.type.tensor_type.shape.dim]
            x = rng.standard_normal(dims).astype(np.float32)
            if vi.name == "a":  # outlier columns in the Gemm input too
                x[:, [2, 9]] *= 50
            feed[vi.name] = x
        out.append(feed)
    return out


def _run_all(model: onnx.ModelProto, feeds) -> list[np.ndarray]:
    import ort_core

    sess = ort_core.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [np.asarray(o) for f in feeds for o in sess.run(None, f)]


def _ops(model):
    return [n.op_type for n in model.graph.node]


@pytest.mark.parametrize("folding", [True, False])
@pytest.mark.parametrize("build", [block, gemm_conv])
def test_smoothed_model_computes_the_same_function(build, folding):
    model = build()
    calib, test = _feeds(model, 3, seed=1), _feeds(model, 2, seed=2)
    opts = {"SmoothQuant": True, "SmoothQuantAlpha": 0.5, "SmoothQuantFolding": folding}
    smoothed, inserted, _ = smooth_model(model, Reader(calib), opts)
    onnx.checker.check_model(smoothed)
    changed = [
        i.name
        for i, j in zip(model.graph.initializer, smoothed.graph.initializer)
        if not np.array_equal(numpy_helper.to_array(i), numpy_helper.to_array(j))
    ]
    assert changed, "SmoothQuant rewrote no weight"
    muls = [n.name for n in smoothed.graph.node if n.op_type == "Mul"]
    assert muls == inserted
    if folding and build is block:
        # ln -> LayerNorm scale/bias, f -> ff1's weight and bias; h needs a Mul (residual reads it)
        assert {"ln.g", "ln.b", "w1", "b1"} <= set(changed) and len(inserted) == 1
    if folding and build is gemm_conv:
        # g1 -> gemm1's B rows and C; c1 -> conv1's filters and bias; the graph input a and
        # r2 (a Relu's output) need a Mul
        assert {"g1.w", "g1.b", "c1.w", "c1.b"} <= set(changed) and len(inserted) == 2
    if not folding:
        assert len(inserted) == {block: 3, gemm_conv: 4}[build]
    for ref, out in zip(_run_all(model, test), _run_all(smoothed, test)):
        scale = np.abs(ref).max()
        assert np.abs(out - ref).max() <= 1e-5 * scale, np.abs(out - ref).max() / scale


def _quant_error(model, path, tmp_path, calib, test, extra=None, **kw) -> float:
    """Mean |quantized - float| over mean |float| on ``test``, the quantized model run in
    ort-core."""
    dst = tmp_path / f"q{len(list(tmp_path.iterdir()))}.onnx"
    oq.quantize_static(path, dst, Reader(calib), extra_options=extra, **kw)
    onnx.checker.check_model(onnx.load(dst))
    ref = np.concatenate(_run_all(model, test))
    return float(np.abs(core_run(dst, test) - ref).mean() / np.abs(ref).mean())


@pytest.mark.parametrize(
    ("kw", "alpha", "folding"),
    [
        ({}, 0.5, True),
        ({"per_channel": True}, 0.75, True),
        # the inserted Muls: only MatMuls are quantized, so the LayerNorm output they read is
        # not quantized before its outliers are divided out
        ({"op_types_to_quantize": ["MatMul"]}, 0.5, False),
    ],
)
def test_smooth_quant_lowers_the_quantization_error_with_outlier_channels(
    tmp_path, kw, alpha, folding
):
    model = block()
    path = tmp_path / "block.onnx"
    onnx.save(model, path)
    calib, test = _feeds(model, 4, seed=1), _feeds(model, 4, seed=2)
    plain = _quant_error(model, path, tmp_path, calib, test, **kw)
    extra = {"SmoothQuant": True, "SmoothQuantAlpha": alpha, "SmoothQuantFolding": folding}
    smooth = _quant_error(model, path, tmp_path, calib, test, extra, **kw)
    print(f"\n{kw} alpha={alpha} folding={folding}: error vs float {plain:.4f} -> {smooth:.4f}")
    assert smooth < 0.5 * plain, (plain, smooth)


def test_written_model_runs_in_onnxruntime_as_in_ort_core(tmp_path):
    model = block()
    path = tmp_path / "block.onnx"
    onnx.save(model, path)
    calib, test = _feeds(model, 4, seed=1), _feeds(model, 2, seed=2)
    dst = tmp_path / "sq.onnx"
    oq.quantize_static(
        path,
        dst,
        Reader(calib),
        per_channel=True,
        extra_options={"SmoothQuant": True, "SmoothQuantFolding": False},
    )
    onnx.checker.check_model(onnx.load(dst), full_check=True)
    ref = ort_run(path, test)
    by_ort, by_core = ort_run(dst, test), core_run(dst, test)
    step = float(np.abs(ref).max()) / 127
    assert np.abs(by_core - by_ort).max() <= np.abs(by_ort - ref).max() * 1.5 + 3 * step
    # without its integer fusions onnxruntime computes the QDQ graph as ort-core does
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(dst), so, providers=["CPUExecutionProvider"])
    plain_ort = np.concatenate([sess.run(None, f)[0] for f in test])
    np.testing.assert_allclose(by_core, plain_ort, rtol=0, atol=1e-5 * np.abs(plain_ort).max())


def test_calibration_iterations_limit_the_statistics_batches():
    model = block()
    calib = _feeds(model, 2, seed=1)
    calib += [{"x": calib[0]["x"].copy()} for _ in range(3)]
    # batches 3-5 repeat batch 1 but for a large value in the last: seen with 5 batches, not 2
    calib[-1]["x"][0, 0, 7] = 1e4
    few, _, rest = smooth_model(model, Reader(calib), {"SmoothQuantCalibIter": 2})
    many, _, _ = smooth_model(model, Reader(calib), {"SmoothQuantCalibIter": 5})
    assert len(list(rest)) == 5  # calibration still sees every batch
    g_few, g_many = (
        numpy_helper.to_array(next(i for i in m.graph.initializer if i.name == "ln.g"))
        for m in (few, many)
    )
    assert g_many[7] < g_few[7]  # a larger max|X_7| divides channel 7 by more
    np.testing.assert_array_equal(np.delete(g_many, 7), np.delete(g_few, 7))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("SmoothQuantAlpha", -0.1),
        ("SmoothQuantAlpha", 1.5),
        ("SmoothQuantAlpha", float("nan")),
        ("SmoothQuantAlpha", "0.5"),
        ("SmoothQuantFolding", "yes"),
        ("SmoothQuantFolding", 1),
        ("SmoothQuantCalibIter", 0),
        ("SmoothQuant", "True"),
    ],
)
def test_bad_values_name_the_option(tmp_path, key, value):
    model = block()
    path = tmp_path / "block.onnx"
    onnx.save(model, path)
    extra = {"SmoothQuant": True, key: value}
    with pytest.raises(ValueError, match=key):
        oq.quantize_static(
            path, tmp_path / "q.onnx", Reader(_feeds(model, 1, 1)), extra_options=extra
        )


def test_smooth_quant_needs_a_reader_and_static_quantization(tmp_path):
    model = block()
    path = tmp_path / "block.onnx"
    onnx.save(model, path)
    calib = _feeds(model, 2, seed=1)
    with pytest.raises(ValueError, match="SmoothQuant"):
        oq.quantize_dynamic(path, tmp_path / "d.onnx", extra_options={"SmoothQuant": True})
    cache = tmp_path / "ranges.json"
    oq.quantize_static(
        path,
        tmp_path / "a.onnx",
        Reader(calib),
        calibration_cache_path=cache,
        extra_options={"SmoothQuant": True},
    )
    assert json.loads(cache.read_text())["smooth_quant"]["alpha"] == 0.5
    with pytest.raises(ValueError, match="SmoothQuant"):  # no reader: nothing to smooth with
        oq.quantize_static(
            path,
            tmp_path / "b.onnx",
            None,
            calibration_cache_path=cache,
            extra_options={"SmoothQuant": True},
        )
    with pytest.raises(ValueError, match="SmoothQuant settings"):  # ranges of a smoothed model
        oq.quantize_static(path, tmp_path / "c.onnx", None, calibration_cache_path=cache)
    oq.quantize_static(path, tmp_path / "c.onnx", Reader(calib), calibration_cache_path=cache)
    assert "smooth_quant" not in json.loads(cache.read_text())  # recalibrated without
