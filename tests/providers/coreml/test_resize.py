"""Resize and Upsample on Core ML: single nodes converted to ML Programs and evaluated by the MIL
reference runtime against onnx's ReferenceEvaluator (float32 and float16 compute precision), the
reference runtime's numpy resize ops against the ONNX op they stand for, and the nodes Core ML is
not given, with the reason ``ort-core inspect`` shows."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from ort_coreml import milref

from ort_core.ir import model_from_proto
from ort_core.provider import GraphView
from tests.conftest import make_model, tensor

from .harness import COREML, TOLERANCE, placement, session

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
RNG = np.random.default_rng(11)


def _init(name, value):
    return numpy_helper.from_array(np.asarray(value), name)


def resize_model(shape, *, opset=13, op="Resize", scales=None, sizes=None, x_input=None,
                 **attrs):  # fmt: skip
    """One Resize (or Upsample) node on x of ``shape`` with constant scales or sizes."""
    inits, names = [], ["x"]
    if op == "Upsample" and opset < 9:
        attrs["scales"] = [float(s) for s in scales]
    elif op == "Upsample" or opset < 11:
        names.append("scales")
        inits.append(_init("scales", np.asarray(scales, np.float32)))
    else:
        roi = ""
        if opset == 11:  # roi, scales are required inputs in opset 11 (empty when unused)
            roi = "roi"
            inits.append(_init("roi", np.zeros(0, np.float32)))
        names.append(roi)
        if scales is not None:
            names.append("scales")
            inits.append(_init("scales", np.asarray(scales, np.float32)))
        else:
            names.append("scales" if opset == 11 else "")
            if opset == 11:
                inits.append(_init("scales", np.zeros(0, np.float32)))
            names.append("sizes")
            inits.append(_init("sizes", np.asarray(sizes, np.int64)))
    node = helper.make_node(op, names, ["y"], **attrs)
    inputs = [tensor("x", shape=list(shape))]
    if x_input is not None:  # scales fed at run time instead of a constant
        inits = [i for i in inits if i.name != x_input]
        inputs.append(tensor(x_input, shape=[4]))
    return make_model([node], inputs, [tensor("y", shape=None)], inits, opset=opset)


def onnx_reference(model, x):
    return ReferenceEvaluator(model).run(None, {"x": x})[0]


def _equivalent_resize(shape, scales, mode):
    """Resize-10 and Upsample as the opset-13 Resize they equal: asymmetric, nearest rounding
    down (onnx's ReferenceEvaluator implements neither Resize-10 nor Upsample-7)."""
    extra = {"nearest_mode": "floor"} if mode == "nearest" else {}
    return resize_model(shape, scales=scales, mode=mode,
                        coordinate_transformation_mode="asymmetric", **extra)  # fmt: skip


# (id, input shape, resize_model keywords); "equiv" cases compare with _equivalent_resize
CASES = [
    ("nearest-x2-default", (1, 3, 4, 5), dict(scales=[1, 1, 2, 2], mode="nearest")),
    ("nearest-asym-floor-2x3", (2, 2, 3, 4),
     dict(opset=19, scales=[1, 1, 2, 3], mode="nearest",
          coordinate_transformation_mode="asymmetric", nearest_mode="floor")),
    ("nearest-pytorch-ceil-sizes", (1, 3, 4, 4),
     dict(sizes=[1, 3, 8, 12], mode="nearest", nearest_mode="round_prefer_ceil",
          coordinate_transformation_mode="pytorch_half_pixel")),
    ("nearest-opset11-scales", (1, 2, 3, 3), dict(opset=11, scales=[1, 1, 3, 2])),
    ("nearest-axes-sizes", (1, 2, 3, 4), dict(opset=18, sizes=[6, 8], axes=[2, 3])),
    ("nearest-negative-axes-scales", (1, 2, 3, 4),
     dict(opset=19, scales=[3, 2], axes=[-2, -1], mode="nearest")),
    ("linear-align-corners-x2", (1, 3, 4, 5),
     dict(scales=[1, 1, 2, 2], mode="linear", coordinate_transformation_mode="align_corners")),
    ("linear-asymmetric-x2", (1, 3, 4, 5),
     dict(scales=[1, 1, 2, 2], mode="linear", coordinate_transformation_mode="asymmetric")),
    ("linear-half-pixel-x2", (1, 3, 4, 5), dict(scales=[1, 1, 2, 2], mode="linear")),
    ("linear-pytorch-x2", (1, 3, 4, 5),
     dict(scales=[1, 1, 2, 2], mode="linear",
          coordinate_transformation_mode="pytorch_half_pixel")),
    ("linear-half-pixel-down-up", (2, 2, 4, 4), dict(scales=[1, 1, 0.5, 1.5], mode="linear")),
    ("linear-half-pixel-to-1", (1, 2, 4, 6), dict(sizes=[1, 2, 1, 3], mode="linear")),
    *[(f"linear-{m}-sizes-down", (1, 3, 5, 7),
       dict(opset=19, sizes=[1, 3, 3, 4], mode="linear", coordinate_transformation_mode=m))
      for m in ("align_corners", "asymmetric", "half_pixel", "pytorch_half_pixel")],
    *[(f"linear-{m}-sizes-up", (1, 1, 3, 4),
       dict(opset=11, sizes=[1, 1, 7, 9], mode="linear", coordinate_transformation_mode=m))
      for m in ("align_corners", "asymmetric", "half_pixel", "pytorch_half_pixel")],
    ("resize10-nearest-equiv", (1, 2, 3, 4), dict(opset=10, scales=[1, 1, 2, 3], mode="nearest")),
    ("resize10-linear-equiv", (1, 2, 4, 4), dict(opset=10, scales=[1, 1, 1.5, 0.5],
                                                 mode="linear")),
    ("upsample7-nearest-equiv", (1, 2, 3, 4),
     dict(op="Upsample", opset=7, scales=[1, 1, 2, 2], mode="nearest")),
    ("upsample7-linear-equiv", (1, 2, 3, 4),
     dict(op="Upsample", opset=7, scales=[1, 1, 2, 3], mode="linear")),
    ("upsample9-nearest-equiv", (1, 2, 3, 4),
     dict(op="Upsample", opset=9, scales=[1, 1, 3, 2], mode="nearest")),
    ("upsample9-linear-equiv", (1, 2, 2, 4),
     dict(op="Upsample", opset=9, scales=[1, 1, 2.5, 1.5], mode="linear")),
]  # fmt: skip


@pytest.mark.parametrize("precision", ["FLOAT32", "FLOAT16"])
@pytest.mark.parametrize("shape, kw", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_resize_matches_onnx_reference(reference, shape, kw, precision):
    model = resize_model(shape, **kw)
    x = RNG.standard_normal(shape).astype(np.float32)
    sess = session(model, {"ComputePrecision": precision}, fallback=False)
    assert placement(sess) == {COREML: 1}
    (got,) = sess.run(None, {"x": x})
    if kw.get("op") == "Upsample" or kw.get("opset", 13) == 10:
        want = onnx_reference(_equivalent_resize(shape, kw["scales"], kw["mode"]), x)
    elif any(a < 0 for a in kw.get("axes", ())):  # onnx's evaluator takes positive axes only
        want = onnx_reference(resize_model(shape, **{**kw, "axes": [2, 3]}), x)
    else:
        want = onnx_reference(model, x)
    assert got.dtype == want.dtype and got.shape == want.shape
    rtol, atol = TOLERANCE[precision] if precision == "FLOAT16" else (1e-5, 1e-5)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def test_upsample9_nearest_matches_onnx_upsample():
    """The equivalence the "equiv" cases rely on, where onnx implements Upsample itself."""
    x = RNG.standard_normal((1, 2, 3, 4)).astype(np.float32)
    up = resize_model(x.shape, op="Upsample", opset=9, scales=[1, 1, 3, 2], mode="nearest")
    eq = _equivalent_resize(x.shape, [1, 1, 3, 2], "nearest")
    np.testing.assert_array_equal(onnx_reference(up, x), onnx_reference(eq, x))


# the reference runtime's numpy ops on their own against the ONNX Resize they stand for
@pytest.mark.parametrize("shape, factors", [((1, 2, 3, 4), (2, 3)), ((2, 1, 2, 2), (1, 4))])
def test_milref_upsample_nearest_neighbor(shape, factors):
    x = RNG.standard_normal(shape).astype(np.float32)
    got = milref.upsample_nearest_neighbor(x, *factors)
    want = onnx_reference(_equivalent_resize(shape, [1, 1, *factors], "nearest"), x)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("size", [(7, 9), (3, 4), (4, 12), (1, 2)])
@pytest.mark.parametrize("ctm, sampling", [("align_corners", "STRICT_ALIGN_CORNERS"),
                                           ("asymmetric", "DEFAULT"),
                                           ("half_pixel", "UNALIGN_CORNERS")])  # fmt: skip
def test_milref_resize_bilinear(size, ctm, sampling):
    x = RNG.standard_normal((1, 2, 5, 6)).astype(np.float32)
    got = milref.resize_bilinear(x, *size, sampling_mode=sampling)
    model = resize_model(x.shape, sizes=[1, 2, *size], mode="linear",
                         coordinate_transformation_mode=ctm)  # fmt: skip
    np.testing.assert_allclose(got, onnx_reference(model, x), rtol=1e-5, atol=1e-6)


def decline_reason(model) -> str | None:
    from ort_coreml.provider import CoreMLExecutionProvider

    m = model_from_proto(model)
    view = GraphView(m.graph, m.opset_imports)
    if CoreMLExecutionProvider({}).get_capability(view):
        return None
    (reasons,) = view.reasons.values()
    return reasons[0].split(": ", 1)[1]


DECLINED = [
    ("cubic", (1, 1, 4, 4), dict(scales=[1, 1, 2, 2], mode="cubic"),
     "mode 'cubic': Core ML resizes with nearest and linear only"),
    ("rank-3", (1, 4, 4), dict(sizes=[1, 8, 8], mode="linear"),
     "Core ML resizes 4-D NCHW input only"),
    ("channel-axis", (1, 2, 4, 4), dict(scales=[1, 2, 2, 2], mode="linear"),
     "resizes the batch or channel axis"),
    ("nearest-fractional", (1, 1, 4, 4), dict(scales=[1, 1, 1.5, 2], mode="nearest"),
     "repeats pixels by integer factors only"),
    ("nearest-downsample", (1, 1, 4, 4), dict(sizes=[1, 1, 2, 2], mode="nearest"),
     "repeats pixels by integer factors only"),
    ("nearest-asymmetric-round", (1, 1, 4, 4),
     dict(scales=[1, 1, 2, 2], mode="nearest", coordinate_transformation_mode="asymmetric"),
     "coordinate_transformation_mode 'asymmetric' and nearest_mode 'round_prefer_floor'"),
    ("nearest-half-pixel-floor", (1, 1, 4, 4),
     dict(scales=[1, 1, 3, 3], mode="nearest", nearest_mode="floor"),
     "coordinate_transformation_mode 'half_pixel' and nearest_mode 'floor'"),
    ("nearest-tf-half-pixel", (1, 1, 4, 4),
     dict(scales=[1, 1, 2, 2], mode="nearest", nearest_mode="floor",
          coordinate_transformation_mode="tf_half_pixel_for_nn"),
     "coordinate_transformation_mode 'tf_half_pixel_for_nn' and nearest_mode 'floor'"),
    ("linear-tf-crop", (1, 1, 4, 4),
     dict(sizes=[1, 1, 8, 8], mode="linear", coordinate_transformation_mode="tf_crop_and_resize"),
     "coordinate_transformation_mode 'tf_crop_and_resize' is not converted"),
    ("linear-half-pixel-symmetric", (1, 1, 4, 4),
     dict(opset=19, sizes=[1, 1, 8, 8], mode="linear",
          coordinate_transformation_mode="half_pixel_symmetric"),
     "coordinate_transformation_mode 'half_pixel_symmetric' is not converted"),
    ("linear-align-corners-to-1", (1, 1, 4, 4),
     dict(sizes=[1, 1, 1, 4], mode="linear", coordinate_transformation_mode="align_corners"),
     "to a size of 1 with 'align_corners'"),
    ("non-integral-size", (1, 1, 3, 3), dict(scales=[1, 1, 1.7, 2], mode="linear"),
     "give non-integral sizes"),
    ("antialias", (1, 1, 8, 8), dict(opset=18, sizes=[1, 1, 4, 4], mode="linear", antialias=1),
     "antialias=1"),
    ("keep-aspect", (1, 1, 4, 4),
     dict(opset=18, sizes=[1, 1, 8, 6], mode="linear", keep_aspect_ratio_policy="not_larger"),
     "keep_aspect_ratio_policy 'not_larger'"),
    ("exclude-outside", (1, 1, 4, 4),
     dict(scales=[1, 1, 2, 2], mode="linear", exclude_outside=1), "exclude_outside=1"),
    ("scales-fed", (1, 1, 4, 4), dict(scales=[1, 1, 2, 2], mode="linear", x_input="scales"),
     "scales must be a constant for Core ML"),
    ("upsample-scales-fed", (1, 1, 4, 4),
     dict(op="Upsample", opset=9, scales=[1, 1, 2, 2], x_input="scales"),
     "Upsample's scales must be a constant for Core ML"),
]  # fmt: skip


@pytest.mark.parametrize("shape, kw, reason", [c[1:] for c in DECLINED],
                         ids=[c[0] for c in DECLINED])  # fmt: skip
def test_declined_with_reason(shape, kw, reason):
    got = decline_reason(resize_model(shape, **kw))
    assert got is not None and reason in got, got


def test_admitted_cases_are_claimed():
    for _, shape, kw in CASES:
        assert decline_reason(resize_model(shape, **kw)) is None, kw


def test_inspect_shows_the_resize_reason(reference, tmp_path, capsys):
    from ort_core.cli import main

    path = tmp_path / "resize.onnx"
    model = resize_model((1, 1, 4, 4), scales=[1, 1, 2, 2], mode="cubic")
    path.write_bytes(model.SerializeToString())
    assert main(["inspect", str(path), "--providers", "coreml,cpu"]) == 0
    out = capsys.readouterr().out
    assert "Resize mode 'cubic': Core ML resizes with nearest and linear only" in out
