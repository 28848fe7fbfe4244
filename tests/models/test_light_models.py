"""The light models shipped inside the onnx wheel run on the CPU provider and match their expected
outputs (their weights are constants: this proves op coverage, see tests/differential for numerics).

Each model is judged as the demo judges it (``ort_core.demo.judge``): outputs against the shipped
ones, and for a final Softmax whose logits make it ill-conditioned (squeezenet's 1000 equal logits,
where one float32 step turns a uniform output into a one-hot) the logits against onnxruntime's and
against those the shipped output implies, plus the output against the Softmax of its own logits."""

import numpy as np
import pytest

import ort_core as ort
from ort_core.demo import LIGHT_MODELS, Run, decide, demo_case, judge


@pytest.mark.slow
@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_light_model_matches_expected_output(name):
    onnxruntime = pytest.importorskip("onnxruntime")
    case = demo_case(name)
    sess = ort.InferenceSession(case.model, providers=["CPUExecutionProvider"])
    outs = [np.asarray(o) for o in sess.run(None, case.feed)]
    for got, exp in zip(outs, case.expected):
        assert got.shape == exp.shape and got.dtype == exp.dtype
    so = onnxruntime.SessionOptions()
    so.log_severity_level = 3
    ref_sess = onnxruntime.InferenceSession(
        case.model.SerializeToString(), so, providers=["CPUExecutionProvider"]
    )
    reference = [np.asarray(o) for o in ref_sess.run(None, case.feed)]
    run = Run("CPUExecutionProvider", outs)
    verdict = judge(case, run, decide(case, reference, [run]), reference)
    assert verdict.ok, (verdict.compared, verdict.rel_err, verdict.error)
    counts = {}
    for sub in sess.placements:
        counts[sub.ep_name] = counts.get(sub.ep_name, 0) + len(sub.get_nodes())
    assert set(counts) == {"CPUExecutionProvider"} and counts["CPUExecutionProvider"] > 0
