"""The quantize / float16 / compare subcommands, driven through argparse as cli.py wires them."""

from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from ort_core.quantization.cli import add_parsers

from . import models
from .conftest import ort_run


def _cli(*argv) -> int:
    parser = argparse.ArgumentParser(prog="ort-core")
    add_parsers(parser.add_subparsers())
    args = parser.parse_args([str(a) for a in argv])
    return args.fn(args)


@pytest.fixture
def cnn(tmp_path):
    path = tmp_path / "cnn.onnx"
    onnx.save(models.cnn(), path)
    calib = tmp_path / "calib"
    for i, feed in enumerate(models.batches((4, 3, 16, 16), 3, seed=1)):
        (calib / f"b{i}").mkdir(parents=True)
        np.save(calib / f"b{i}" / "x.npy", feed["x"])
    return path, calib


def test_cli_imports_only_the_standard_library():
    code = (
        "import sys, ort_core.quantization.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'onnx', 'onnxruntime')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    code = "import sys, ort_core; print('ort_core.quantization' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("fmt", ["qdq", "qoperator"])
def test_quantize_static(cnn, tmp_path, capsys, fmt):
    path, calib = cnn
    dst = tmp_path / "q.onnx"
    rc = _cli("quantize", path, dst, "--calibration-dir", calib, "--per-channel", "--format", fmt)
    out = capsys.readouterr().out
    assert "static quantization" in out and "size:" in out
    onnx.checker.check_model(onnx.load(dst))
    ops = {n.op_type for n in onnx.load(dst).graph.node}
    assert ("QLinearConv" in ops) == (fmt == "qoperator")
    if fmt == "qdq":  # ort-core runs it: accuracy on the 3 calibration batches is printed
        assert rc == 0 and "accuracy on 3 batch(es), output 'logits'" in out and "top-1" in out
    else:  # until ort-core has QGemm the accuracy line says why it could not run
        assert ("accuracy on 3 batch(es)" in out and rc == 0) or (
            "could not run" in out and rc == 1
        )


def test_quantize_dynamic_and_options(cnn, tmp_path, capsys):
    path, calib = cnn
    dst = tmp_path / "d.onnx"
    assert _cli("quantize", path, dst, "--weight-type", "QUInt8") == 0
    out = capsys.readouterr().out
    assert "dynamic quantization" in out and "random input" in out
    w = {t.name: t for t in onnx.load(dst).graph.initializer}["c1.w_quantized"]
    assert w.data_type == onnx.TensorProto.UINT8
    with pytest.raises(SystemExit, match="drop --format qdq"):
        _cli("quantize", path, dst, "--mode", "dynamic", "--format", "qdq")
    with pytest.raises(SystemExit, match="calibration-dir"):
        _cli("quantize", path, dst, "--mode", "static")
    bad = tmp_path / "bad"
    bad.mkdir()
    np.save(bad / "y.npy", np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="x.npy"):
        _cli("quantize", path, dst, "--calibration-dir", bad)


def test_quantize_static_method_and_types(cnn, tmp_path, capsys):
    path, calib = cnn
    dst = tmp_path / "q.onnx"
    args = ["--method", "percentile", "--activation-type", "QUInt8", "--weight-type", "QUInt8"]
    assert _cli("quantize", path, dst, "--calibration-dir", calib, *args) == 0
    zp = {t.name: t for t in onnx.load(dst).graph.initializer}["x_zero_point"]
    assert zp.data_type == onnx.TensorProto.UINT8


def test_float16(cnn, tmp_path, capsys):
    path, calib = cnn
    dst = tmp_path / "h.onnx"
    rc = _cli(
        "float16",
        path,
        dst,
        "--keep-io-types",
        "--op-block-list",
        "Gemm",
        "--inputs-dir",
        calib / "b0",
    )
    out = capsys.readouterr().out
    assert rc == 0 and "float16" in out and "size:" in out and "max abs error" in out
    m = onnx.load(dst)
    assert m.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    fc = next(n for n in m.graph.node if n.op_type == "Gemm")
    types = {t.name: t.data_type for t in m.graph.initializer}
    assert types[fc.input[1]] == onnx.TensorProto.FLOAT
    assert _cli("float16", path, tmp_path / "b.onnx", "--bfloat16") == 0


def test_compare_against_finds_the_first_changed_node(cnn, tmp_path, capsys):
    path, _ = cnn
    m = onnx.load(path)
    for t in m.graph.initializer:  # perturb the depthwise conv only
        if t.name == "dw.w":
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) * 1.5, "dw.w"))
    other = tmp_path / "other.onnx"
    onnx.save(m, other)
    assert _cli("compare", path, "--against", other) == 1
    out = capsys.readouterr().out
    assert "first divergence: tensor 'dw' produced by Conv 'dwconv'" in out
    assert _cli("compare", path, "--against", path) == 0
    assert "no tensor diverges" in capsys.readouterr().out


def test_compare_quantized_and_float16(cnn, tmp_path, capsys):
    path, calib = cnn
    q = tmp_path / "q.onnx"
    _cli("quantize", path, q, "--calibration-dir", calib)
    capsys.readouterr()
    # QDQ tensors are matched through their DequantizeLinear outputs: within a few steps
    assert _cli("compare", path, "--against", q, "--rtol", "0.05", "--atol", "0.05", "--all") == 0
    out = capsys.readouterr().out
    assert "r1" in out and "logits" in out and "DIVERGED" not in out
    assert _cli("compare", path, "--against", q, "--rtol", "1e-6", "--atol", "1e-7") == 1
    assert "first divergence" in capsys.readouterr().out
    h = tmp_path / "h.onnx"
    _cli("float16", path, h)
    capsys.readouterr()
    assert _cli("compare", path, "--against", h, "--rtol", "1e-2", "--atol", "1e-2") == 0


def test_compare_two_providers(cnn, capsys):
    import ort_core

    path, _ = cnn
    avail = ort_core.get_available_providers()
    pair = ",".join(avail[:2]) if len(avail) > 1 else "CPUExecutionProvider,cpu"
    rc = _cli("compare", path, "--providers", pair, "--rtol", "1e-3", "--atol", "1e-3")
    out = capsys.readouterr().out
    assert "tensors matched by name" in out
    assert rc == 0 and "no tensor diverges" in out  # the float model agrees across providers
    with pytest.raises(SystemExit, match="two providers"):
        _cli("compare", path)


def test_quantized_output_of_cli_runs_in_onnxruntime(cnn, tmp_path):
    path, calib = cnn
    dst = tmp_path / "q.onnx"
    _cli("quantize", path, dst, "--calibration-dir", calib, "--format", "qoperator")
    feeds = models.batches((4, 3, 16, 16), 1, seed=9)
    ref, got = ort_run(path, feeds), ort_run(dst, feeds)
    assert np.abs(ref - got).max() < 0.1 * np.abs(ref).max()
