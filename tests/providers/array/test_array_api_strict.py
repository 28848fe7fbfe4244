"""The shared kernels use nothing but the array API standard: each case whose element types
array_api_strict holds runs on array_api_strict arrays (a provider whose device is that bare
namespace) and must give what the same kernels give on numpy. A kernel calling a numpy function
on its data, or a numpy-only method, fails here."""

from __future__ import annotations

import numpy as np
import pytest

from tests.differential.harness import assert_same

from ._providers import STRICT_TYPES, ArrayStrictProvider
from .cases import CASES, Case
from .test_vs_onnxruntime import run_shared

FLOAT16 = 10  # TensorProto.FLOAT16

pytest.importorskip("array_api_strict")

STRICT_CASES = [
    c
    for c in CASES
    if all(x is None or np.asarray(x).dtype in STRICT_TYPES for x in c.inputs)
    and not (c.op == "Cast" and c.attrs["to"] == FLOAT16)
]


@pytest.mark.parametrize("case", STRICT_CASES, ids=[c.id for c in STRICT_CASES])
def test_strict_matches_numpy(case: Case, register_provider) -> None:
    on_numpy = run_shared(case, "ArrayNumpyExecutionProvider", register_provider)
    on_strict = run_shared(
        case, "ArrayStrictExecutionProvider", register_provider, ArrayStrictProvider
    )
    for i, (e, g) in enumerate(zip(on_numpy, on_strict)):
        assert_same(e, g, 1e-6, 1e-7, f"{case.id} output {i}")


def test_most_cases_run_on_strict() -> None:
    """The filter above keeps the cases of every op whose types the standard has."""
    ops = {c.op for c in STRICT_CASES}
    assert len(STRICT_CASES) > 0.8 * len(CASES) and {"Einsum", "ScatterND", "Pad", "Erf"} <= ops


def test_output_types_the_namespace_lacks_are_declined(register_provider) -> None:
    """ort_array.register(dtypes=...) narrows outputs too: Cast to float16 is a limit on a
    namespace without float16, so the node falls back instead of failing at run time."""
    case = Case("Cast", [np.ones(3, np.float32)], {"to": FLOAT16})
    with pytest.raises(Exception, match="output 0 has element type float16"):
        run_shared(case, "ArrayStrictExecutionProvider", register_provider, ArrayStrictProvider)
