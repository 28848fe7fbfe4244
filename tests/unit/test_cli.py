import subprocess
import sys

import numpy as np
import onnx

from ort_core.cli import main


def test_providers_lists_cpu(capsys):
    assert main(["providers"]) == 0
    out = capsys.readouterr().out
    assert "CPUExecutionProvider" in out and "ort-cpu" in out and "available" in out


def test_run_saves_outputs(tmp_path, mlp_model, capsys):
    model = tmp_path / "m.onnx"
    onnx.save(mlp_model, model)
    x = np.ones((2, 4), np.float32)
    np.save(tmp_path / "x.npy", x)
    rc = main(
        [
            "run",
            str(model),
            "--input",
            f"x={tmp_path / 'x.npy'}",
            "--providers",
            "cpu",
            "--output-dir",
            str(tmp_path / "out"),
        ]
    )
    assert rc == 0
    y = np.load(tmp_path / "out" / "y.npy")
    assert y.shape == (2, 3) and y.dtype == np.float32
    assert "providers: CPUExecutionProvider" in capsys.readouterr().out


def test_run_reports_typed_errors(tmp_path, capsys):
    rc = main(["run", str(tmp_path / "missing.onnx")])
    assert rc == 2
    assert "NoSuchFile" in capsys.readouterr().err


def test_inspect_shows_placement(tmp_path, mlp_model, capsys):
    model = tmp_path / "m.onnx"
    onnx.save(mlp_model, model)
    assert main(["inspect", str(model), "--providers", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "matmul" in out and "CPUExecutionProvider" in out


def test_console_script_demo_subset():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ort_core.cli",
            "demo",
            "--models",
            "squeezenet,shufflenet",
            "--repeat",
            "1",
            "--providers",
            "cpu",
            "--check",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    # stdout is the table and nothing else: titles, header, rule, a row per model, legend, summary
    assert lines[0].split()[0] == "CPU"
    assert lines[1].split()[:4] == ["model", "compared", "nodes", "ms"]
    assert set(lines[2]) == {"-", " "}
    assert lines[3].startswith("squeezenet  logits, cond") and " OK " in lines[3]
    assert lines[4].startswith("shufflenet  output, logits") and " OK " in lines[4]
    assert lines[5] == "" and lines[6].startswith("compared: ")
    assert all(line.startswith(("  ", "result: ")) for line in lines[7:-1])
    assert lines[-1].startswith("2 OK, 0 FAIL (2 models x 1 provider in ")


def test_perf_prints_percentiles_and_top_ops(tmp_path, mlp_model, capsys):
    model = tmp_path / "m.onnx"
    onnx.save(mlp_model, model)
    assert main(["perf", str(model), "--providers", "cpu", "--runs", "5", "--warmup", "1"]) == 0
    captured = capsys.readouterr()
    assert "p50=" in captured.out and "p99=" in captured.out
    assert "top " in captured.out and "CPU" in captured.out
    assert "5/5 runs" in captured.err  # the progress bar goes to stderr
