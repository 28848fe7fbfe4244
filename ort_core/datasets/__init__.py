"""Small example models for tutorials and quick checks, as ``onnxruntime.datasets`` ships them.

``get_example(name)`` returns the absolute path of an example: ``mul_1.onnx`` (Y = X * W, float
[3, 2]), ``sigmoid.onnx`` (y = Sigmoid(x), float [3, 4, 5]) and ``logreg_iris.onnx`` (a scikit-learn
logistic regression on the iris data, ``float_input`` [N, 4] -> ``label``, ``probabilities`` as
a list of {class: probability} maps). They are made by ``generate.py`` in this folder.
"""

from __future__ import annotations

import os

__all__ = ["get_example", "EXAMPLES"]

#: The examples shipped here.
EXAMPLES = ("mul_1.onnx", "sigmoid.onnx", "logreg_iris.onnx")


def get_example(name: str) -> str:
    """The absolute path of the example model ``name``.

    Raises:
        FileNotFoundError: there is no such example (the message lists those there are).
    """
    here = os.path.abspath(os.path.dirname(__file__))
    full = os.path.join(here, os.path.basename(name))
    if os.path.basename(name) != name or not os.path.exists(full):
        raise FileNotFoundError(
            f"Unable to find example '{name}'. Examples: {', '.join(EXAMPLES)}."
        )
    return full
