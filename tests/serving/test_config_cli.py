"""config.pbtxt parsing, repository loading errors, the ``serve`` subcommand and its clean exit."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from ort_core.serve.config import ModelSettings, ServerOptions, parse_config
from ort_core.serve.errors import ModelLoadError
from ort_core.serve.repository import ModelRepository

from .conftest import mlp_model, write_model


def test_parse_full_config():
    s = parse_config(
        """
        name: "m" backend: "onnxruntime" max_batch_size: 16
        version_policy { specific { versions: [1, 3] } }
        dynamic_batching {
          preferred_batch_size: [8, 4] max_queue_delay_microseconds: 100
          default_queue_policy { max_queue_size: 7 }
        }
        instance_group [ { kind: KIND_GPU gpus: [1] count: 3 } ]
        optimization {
          graph { level: 1 }
          execution_accelerators { cpu_execution_accelerator [ { name: "openvino"
            parameters { key: "device_type" value: "CPU" } } ] }
        }
        parameters { key: "intra_op_thread_count" value: { string_value: "2" } }
        parameters { key: "session.use_env_allocators" value: { string_value: "1" } }
        """,
        "m",
    )
    b = s.batching
    assert (b.max_batch_size, b.dynamic, b.preferred_batch_sizes, b.max_queue_delay_us) == (
        16,
        True,
        (4, 8),
        100,
    )
    assert s.max_queue_size == 7 and s.instance_count == 3
    assert s.version_policy == ("specific", (1, 3))
    assert s.providers == (
        ("CUDAExecutionProvider", {"device_id": "1"}),
        ("openvino", {"device_type": "CPU"}),
    )
    assert s.graph_optimization_level == 2 and s.intra_op_num_threads == 2
    assert s.session_config == (("session.use_env_allocators", "1"),)


@pytest.mark.parametrize(
    "text,words",
    [
        ("sequence_batching { }", ["sequence_batching"]),
        ("max_batch_size: -1", ["max_batch_size"]),
        ("dynamic_batching { }", ["max_batch_size > 0"]),
        ("max_batch_size: 4 dynamic_batching { preferred_batch_size: 9 }", ["9"]),
        ('platform: "tensorflow_savedmodel"', ["tensorflow_savedmodel"]),
        ('name: "other"', ["other"]),
        ('parameters { key: "foo" value: { string_value: "1" } }', ["foo", "providers"]),
        ('parameters { key: "provider_options" value: { string_value: "[1]" } }', ["JSON"]),
        ('default_model_filename: "../x.onnx"', ["plain file name"]),
        ("instance_group [ { kind: KIND_GPU gpus: [0, 1] } ]", ["one GPU"]),
    ],
)
def test_bad_configs_name_the_field(text, words):
    with pytest.raises(ModelLoadError) as e:
        parse_config(text, "m")
    for w in words:
        assert w in e.value.message


def test_repository_load_errors(tmp_path):
    write_model(tmp_path, "nofile", 1, mlp_model())
    (tmp_path / "nofile" / "1" / "model.onnx").rename(tmp_path / "nofile" / "1" / "other.onnx")
    write_model(tmp_path, "nobatch", 1, mlp_model(), "max_batch_size: 4\n")
    (tmp_path / "nobatch" / "1" / "model.onnx").write_bytes(b"not onnx")
    write_model(
        tmp_path,
        "wrongdecl",
        1,
        mlp_model(),
        'input [ { name: "q" data_type: TYPE_FP32 dims: [4] } ]',
    )
    repo = ModelRepository(tmp_path, ServerOptions())
    failed = repo.load_all()
    assert set(failed) == {"nofile", "nobatch", "wrongdecl"}
    assert "model.onnx" in failed["nofile"] and str(tmp_path) not in failed["nofile"]
    assert "session cannot be created" in failed["nobatch"]
    assert "'q'" in failed["wrongdecl"]
    states = {e["name"]: e["state"] for e in repo.index()}
    assert set(states.values()) == {"UNAVAILABLE"}
    repo.close(1)


def test_single_file_and_defaults(tmp_path):
    import onnx

    path = tmp_path / "my model.onnx"
    onnx.save(mlp_model(), str(path))
    defaults = ModelSettings()
    repo = ModelRepository(path, ServerOptions(model_defaults=defaults))
    assert repo.names() == ["my_model"]
    assert repo.load("my_model") == ["1"]
    assert repo.get("my_model").inputs[0].shape == (-1, 4)
    repo.close(1)


def parser():
    from ort_core.serve.cli import add_parsers

    p = argparse.ArgumentParser(prog="ort-core")
    add_parsers(p.add_subparsers(dest="command", required=True))
    return p


def test_cli_arguments_make_options(tmp_path):
    from ort_core.serve.cli import options_from_args

    args = parser().parse_args(
        [
            "serve",
            str(tmp_path),
            "--http-port",
            "0",
            "--grpc-port",
            "off",
            "--max-batch-size",
            "8",
            "--dynamic-batching",
            "--preferred-batch-size",
            "4",
            "--max-queue-delay-us",
            "50",
            "--providers",
            "cpu",
        ]
    )
    o = options_from_args(args)
    assert o.http_port == 0 and o.grpc_port is None and o.providers == ("cpu",)
    b = o.model_defaults.batching
    assert (b.max_batch_size, b.dynamic, b.preferred_batch_sizes, b.max_queue_delay_us) == (
        8,
        True,
        (4,),
        50,
    )
    with pytest.raises(ValueError, match="max-batch-size"):
        options_from_args(parser().parse_args(["serve", "m", "--dynamic-batching"]))
    assert args.fn(parser().parse_args(["serve", str(tmp_path / "missing.onnx")])) == 2


def test_cli_serves_until_sigterm(tmp_path):
    import socket

    import onnx

    path = tmp_path / "m.onnx"
    onnx.save(mlp_model(), str(path))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = (
        "import argparse, sys\n"
        "from ort_core.serve.cli import add_parsers\n"
        "p = argparse.ArgumentParser(); add_parsers(p.add_subparsers())\n"
        "a = p.parse_args(sys.argv[1:]); sys.exit(a.fn(a))\n"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "serve",
            str(path),
            "--http-port",
            str(port),
            "--grpc-port",
            "off",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready") as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.communicate()[1].decode()
                assert time.monotonic() < deadline
                time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err.decode()
        assert out == b""  # the server logs to stderr only
        assert b"shutting down" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_failed_reload_keeps_serving_the_loaded_versions(tmp_path):
    write_model(tmp_path, "m", 1, mlp_model())
    repo = ModelRepository(tmp_path, ServerOptions())
    try:
        assert repo.load("m") == ["1"]
        (tmp_path / "m" / "config.pbtxt").write_text("ensemble_scheduling { }")
        with pytest.raises(ModelLoadError, match="ensemble_scheduling"):
            repo.load("m")
        assert repo.get("m").version == "1" and repo.ready()
        (entry,) = repo.index()
        assert entry["state"] == "READY"
        (tmp_path / "m" / "config.pbtxt").unlink()
        repo.unload("m")
        assert repo.index()[0]["state"] == "UNAVAILABLE"
    finally:
        repo.close(1)


def test_imports_stay_light_and_missing_extras_say_what_to_install():
    code = (
        "import sys, ort_core, ort_core.serve, ort_core.serve.cli\n"
        "heavy = {'starlette', 'uvicorn', 'grpc', 'prometheus_client', 'ray', 'httpx'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

    from ort_core.serve._deps import require
    from ort_core.serve.errors import MissingExtra

    with pytest.raises(MissingExtra, match=r"pip install 'ort-core\[ray\]'") as e:
        require("ray.no_such_module_here", "ort-core's Ray Data batch inference")
    assert isinstance(e.value, ImportError)


def test_busy_ports_fail_clearly_and_leave_no_threads(tmp_path):
    import socket
    import threading

    import onnx

    from ort_core.serve import Server

    path = tmp_path / "m.onnx"
    onnx.save(mlp_model(), str(path))
    before = set(threading.enumerate())
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(OSError, match=f"127.0.0.1:{port} for HTTP"):
            Server(path, http_port=port, grpc_port=None).start()
        with pytest.raises(OSError, match="gRPC"):
            Server(path, http_port=0, grpc_port=port).start()
    time.sleep(0.2)
    # the server's own threads (event loop, model workers) are gone; process-wide pools that
    # grpc and the CPU provider start once may stay
    left = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert not [n for n in left if n.startswith("ort-core-serve")], left
