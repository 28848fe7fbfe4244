"""The error a user gets for each kind of mistake, on onnxruntime and on ort_core: ours must be
catchable as the builtin onnxruntime's is (ValueError, RuntimeError, TypeError, FileNotFoundError),
carry the same onnxruntime class name when onnxruntime raises one of its own classes (Fail,
InvalidArgument, NoSuchFile, InvalidProtobuf, InvalidGraph...), and contain the message parts
users match on."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from tests.api import models
from tests.api._diff import ORT, outcome, same

X = np.ones((3, 2), np.float32)
MUL = models.mul_1().SerializeToString()


def _relu(opset=17, **attrs) -> bytes:
    node = helper.make_node("Relu", ["x"], ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)]
    ).SerializeToString()


def _if_without_branches() -> bytes:
    node = helper.make_node("If", ["c"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _redefined(where: str) -> bytes:
    """A node defining a name already defined: at top level ('y' twice), or in an If branch
    ('r', defined by the main graph)."""
    f = TensorProto.FLOAT
    if where == "top":
        nodes = [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Neg", ["x"], ["y"])]
    else:

        def branch(out):
            return helper.make_graph(
                [helper.make_node("Neg", ["x"], [out])],
                "b",
                [],
                [helper.make_tensor_value_info(out, f, None)],
            )

        nodes = [
            helper.make_node("Relu", ["x"], ["r"]),
            helper.make_node("If", ["c"], ["y"], then_branch=branch("r"), else_branch=branch("q")),
        ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", f, [3]),
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", f, [3])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _session(rt, model=MUL):
    return rt.InferenceSession(model, providers=["CPUExecutionProvider"])


CASES = {
    "missing input": (lambda rt: _session(rt).run(None, {}), ["Required inputs (['X'])"]),
    "unknown input name": (lambda rt: _session(rt).run(None, {"X": X, "nope": X}), ["nope"]),
    "unknown output name": (lambda rt: _session(rt).run(["nope"], {"X": X}), ["nope"]),
    "wrong dtype": (
        lambda rt: _session(rt).run(None, {"X": X.astype(np.float64)}),
        ["Unexpected input data type", "tensor(double)", "tensor(float)"],
    ),
    "wrong rank": (
        lambda rt: _session(rt).run(None, {"X": X.reshape(3, 2, 1)}),
        ["Invalid rank for input: X"],
    ),
    "wrong dims": (
        lambda rt: _session(rt).run(None, {"X": np.ones((4, 2), np.float32)}),
        ["Got invalid dimensions for input: X"],
    ),
    "no such file": (lambda rt: rt.InferenceSession("/no/such/model.onnx"), ["model.onnx"]),
    "not a model": (lambda rt: rt.InferenceSession(b"\x00\x01not a model"), []),
    "unknown attribute": (lambda rt: _session(rt, _relu(flavour="spicy")), ["flavour"]),
    "If without branches": (lambda rt: _session(rt, _if_without_branches()), []),
    "opset too new": (lambda rt: _session(rt, _relu(opset=99)), []),
    "a name defined twice": (
        lambda rt: _session(rt, _redefined("top")),
        ["Duplicate definition of name (y)"],
    ),
    "a branch redefining an outer name": (
        lambda rt: _session(rt, _redefined("branch")),
        ["invalid model"],
    ),
    "missing config entry": (
        lambda rt: rt.SessionOptions().get_session_config_entry("nope"),
        ["SessionOptions does not have configuration with key: nope"],
    ),
    "bad thread count type": (
        lambda rt: setattr(rt.SessionOptions(), "intra_op_num_threads", "2"),
        [],
    ),
    "unknown provider in set_providers": (
        lambda rt: _session(rt).set_providers(["NopeExecutionProvider"]),
        ["Unknown Provider Type: NopeExecutionProvider"],
    ),
    "providers not a sequence": (lambda rt: rt.InferenceSession(MUL, providers=3), []),
    "logger severity": (lambda rt: rt.set_default_logger_severity(9), []),
    "seed type": (lambda rt: rt.set_seed("x"), []),
    "graph assignment without entry": (
        lambda rt: _session(rt).get_provider_graph_assignment_info(),
        ["session.record_ep_graph_assignment_info"],
    ),
    "string tensor bound": (
        lambda rt: (
            _session(rt, models.identity_string().SerializeToString())
            .io_binding()
            .bind_cpu_input("input:0", np.array([["a", "b"], ["c", "d"]]))
        ),
        ["Only binding non-string Tensors is currently supported"],
    ),
    "from_numpy on a device nobody provides": (
        lambda rt: rt.OrtValue.ortvalue_from_numpy(X, "cuda", 0),
        ["Can't allocate memory on the"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_error_matches_onnxruntime(case):
    snippet, fragments = CASES[case]
    theirs = outcome(snippet, ORT)
    assert theirs.error is not None, f"onnxruntime accepts {case!r}: the case is wrong"
    ours = same(snippet, *fragments)
    assert ours.error is not None
    name = type(theirs.error).__name__
    if type(theirs.error).__module__.startswith("onnxruntime"):
        assert type(ours.error).__name__ == name, (case, theirs, ours)
