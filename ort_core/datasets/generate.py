"""Write the example models of :mod:`ort_core.datasets` (run once; the files are committed).

``python -m ort_core.datasets.generate`` needs scikit-learn and skl2onnx (the dev extra) for the
logistic regression; the other two are built with onnx.helper.
"""

from __future__ import annotations

import os

import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))


def mul_1() -> onnx.ModelProto:
    w = helper.make_tensor("W", TensorProto.FLOAT, [3, 2], [1, 2, 3, 4, 5, 6])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["X", "W"], ["Y"], name="mul_1")],
        "mul test",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [3, 2])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [3, 2])],
        [w],
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 7)], ir_version=4, producer_name="ort-core"
    )


def sigmoid() -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Sigmoid", ["x"], ["y"])],
        "test_sigmoid",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4, 5])],
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 9)], ir_version=4, producer_name="ort-core"
    )


def logreg_iris() -> onnx.ModelProto:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(x, y)
    onx = to_onnx(
        model,
        initial_types=[("float_input", FloatTensorType([None, 4]))],
        target_opset={"": 15, "ai.onnx.ml": 3},
        options={id(model): {"zipmap": True}},
    )
    # onnxruntime's example names its outputs label and probabilities
    taken = {o for node in onx.graph.node for o in node.output} | {"label", "probabilities"}
    clash = {n: f"{n}_internal" for n in ("label", "probabilities") if n in taken}
    renames = {**clash, "output_label": "label", "output_probability": "probabilities"}
    for node in onx.graph.node:
        node.input[:] = [renames.get(i, i) for i in node.input]
        node.output[:] = [renames.get(o, o) for o in node.output]
    for vi in onx.graph.output:
        vi.name = renames.get(vi.name, vi.name)
    onx.graph.name = "logreg_iris"
    onx.producer_name = "ort-core"
    return onx


def main() -> None:
    for name, build in (("mul_1", mul_1), ("sigmoid", sigmoid), ("logreg_iris", logreg_iris)):
        model = build()
        onnx.checker.check_model(model)
        onnx.save(model, os.path.join(HERE, f"{name}.onnx"))


if __name__ == "__main__":
    main()
