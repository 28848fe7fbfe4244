"""Small CNNs with depthwise and grouped convolutions, built with onnx.helper (random weights).

The graphs follow what PyTorch's and Paddle2ONNX's exporters emit at opset 17 for eval-mode models:
BatchNormalization folded into the Conv's weights and bias, ReLU6 as Clip(0, 6), HardSwish and
HardSigmoid ops, SiLU as x * Sigmoid(x), upsampling as Resize (nearest), channel shuffle as
Reshape-Transpose-Reshape. Weights are He-scaled so activations stay in range (the float16 and
quantized versions in gen_quantized.py build on these).

- ``mobilenetv2_224``: MobileNetV2 1.0 (inverted residuals, depthwise 3x3), 1x3x224x224, dynamic batch
- ``shufflenetv2_224``: ShuffleNetV2 1.0 (channel split and shuffle, depthwise 3x3), 1x3x224x224
- ``ocr_det_640``: a DBNet-like text detector as PP-OCR mobile ships it (MobileNetV3-large 0.5 with
  squeeze-excite, FPN neck with Resize, ConvTranspose head), 1x3x640x640 with dynamic height/width
- ``ocr_cls_48x192``: a text-direction classifier (MobileNetV3-small 0.35), 1x3x48x192
- ``ocr_rec_48x320``: a CRNN text recognizer (MobileNetV3-small 0.5 with (2,1) strides, a two-layer
  bidirectional LSTM, a 6625-class CTC head), 1x3x48x320
- ``yolo_n_640``: a YOLOv8n-like detector (C2f blocks, SPPF, PAN neck, decoupled head with DFL and box
  decoding to 1x84x8400), static 1x3x640x640
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from geometries import _Builder
from onnx import TensorProto, helper
from zoo import Spec

KIND = "small_cnn"
DEPENDS = ("geometries.py", "zoo.py")
F = TensorProto.FLOAT


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def make_divisible(v: float, divisor: int = 8) -> int:
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class Net(_Builder):
    """_Builder with the layers of small CNNs; keeps track of nothing but names, callers pass
    channel counts (as the model code they mirror does)."""

    def conv(
        self,
        x: str,
        cin: int,
        cout: int,
        k=1,
        s=1,
        groups: int = 1,
        act: str | None = None,
        bias: bool = True,
    ) -> str:
        kh, kw = _pair(k)
        fan_in = cin // groups * kh * kw
        w = self.rng.standard_normal((cout, cin // groups, kh, kw)) * math.sqrt(2.0 / fan_in)
        inputs = [x, self.const("conv_w", w.astype(np.float32))]
        if bias:
            b = self.rng.standard_normal(cout) * 0.01
            inputs.append(self.const("conv_b", b.astype(np.float32)))
        y = self.op(
            "Conv",
            inputs,
            kernel_shape=[kh, kw],
            strides=list(_pair(s)),
            pads=[kh // 2, kw // 2, kh // 2, kw // 2],
            group=groups,
        )
        return self.act(y, act)

    def act(self, x: str, act: str | None) -> str:
        if act is None:
            return x
        if act == "relu":
            return self.op("Relu", [x])
        if act == "relu6":
            return self.op(
                "Clip", [x, self.const("zero", np.float32(0)), self.const("six", np.float32(6))]
            )
        if act == "hswish":
            return self.op("HardSwish", [x])
        if act == "hsig":  # Paddle's hard sigmoid
            return self.op("HardSigmoid", [x], alpha=0.2, beta=0.5)
        if act == "silu":
            return self.op("Mul", [x, self.op("Sigmoid", [x])])
        raise ValueError(act)

    def classifier(self, x: str, c: int, classes: int) -> str:
        x = self.op("Flatten", [self.op("GlobalAveragePool", [x])], axis=1)
        w = (self.rng.standard_normal((classes, c)) / math.sqrt(c)).astype(np.float32)
        return self.op(
            "Gemm",
            [x, self.const("fc_w", w), self.const("fc_b", np.zeros(classes, np.float32))],
            transB=1,
        )

    def upsample(self, x: str, factor: int) -> str:
        scales = self.const("scales", np.array([1, 1, factor, factor], np.float32))
        return self.op(
            "Resize",
            [x, "", scales],
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        )

    def finish(self, y: str, out: str, in_shape, out_shape, name: str) -> onnx.ModelProto:
        self.nodes.append(helper.make_node("Identity", [y], [out], name="output_identity"))
        return self.model(
            [helper.make_tensor_value_info("input", F, in_shape)],
            [helper.make_tensor_value_info(out, F, out_shape)],
            name,
        )


def mobilenet_v2(image: int = 224, classes: int = 1000) -> onnx.ModelProto:
    n = Net(10)
    cfg = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1)]
    cfg += [(6, 160, 3, 2), (6, 320, 1, 1)]
    x, cin = n.conv("input", 3, 32, 3, 2, act="relu6"), 32
    for t, c, reps, s in cfg:
        for i in range(reps):
            stride, hidden, y = (s if i == 0 else 1), cin * t, x
            if t != 1:
                y = n.conv(y, cin, hidden, 1, act="relu6")
            y = n.conv(y, hidden, hidden, 3, stride, groups=hidden, act="relu6")
            y = n.conv(y, hidden, c, 1)
            x, cin = (n.op("Add", [x, y]) if stride == 1 and cin == c else y), c
    x = n.conv(x, cin, 1280, 1, act="relu6")
    return n.finish(
        n.classifier(x, 1280, classes),
        "output",
        ["batch", 3, image, image],
        ["batch", classes],
        "mobilenetv2",
    )


def shufflenet_v2(image: int = 224, classes: int = 1000) -> onnx.ModelProto:
    n = Net(11)
    x = n.conv("input", 3, 24, 3, 2, act="relu")
    x = n.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin, hw = 24, image // 4
    for reps, c in zip((4, 8, 4), (116, 232, 464)):
        half = c // 2
        for i in range(reps):
            if i == 0:
                hw //= 2
                b1 = n.conv(x, cin, cin, 3, 2, groups=cin)
                b1 = n.conv(b1, cin, half, 1, act="relu")
                b2 = n.conv(x, cin, half, 1, act="relu")
                b2 = n.conv(b2, half, half, 3, 2, groups=half)
            else:
                b1, b2 = n.op(
                    "Split", [x, n.const("split", np.array([half, half], np.int64))], 2, axis=1
                )
                b2 = n.conv(b2, half, half, 1, act="relu")
                b2 = n.conv(b2, half, half, 3, 1, groups=half)
            b2 = n.conv(b2, half, half, 1, act="relu")
            x = n.op("Concat", [b1, b2], axis=1)
            # channel shuffle, as torch.view/transpose/view exports it
            x = n.op("Reshape", [x, n.const("shape", np.array([-1, 2, half, hw, hw], np.int64))])
            x = n.op("Transpose", [x], perm=[0, 2, 1, 3, 4])
            x = n.op("Reshape", [x, n.const("shape", np.array([-1, c, hw, hw], np.int64))])
            cin = c
    x = n.conv(x, cin, 1024, 1, act="relu")
    return n.finish(
        n.classifier(x, 1024, classes),
        "output",
        ["batch", 3, image, image],
        ["batch", classes],
        "shufflenetv2",
    )


# MobileNetV3 blocks: kernel, expansion, out channels, squeeze-excite, activation, stride
V3_LARGE = [
    (3, 16, 16, False, "relu", 1),
    (3, 64, 24, False, "relu", 2),
    (3, 72, 24, False, "relu", 1),
    (5, 72, 40, True, "relu", 2),
    (5, 120, 40, True, "relu", 1),
    (5, 120, 40, True, "relu", 1),
    (3, 240, 80, False, "hswish", 2),
    (3, 200, 80, False, "hswish", 1),
    (3, 184, 80, False, "hswish", 1),
    (3, 184, 80, False, "hswish", 1),
    (3, 480, 112, True, "hswish", 1),
    (3, 672, 112, True, "hswish", 1),
    (5, 672, 160, True, "hswish", 2),
    (5, 960, 160, True, "hswish", 1),
    (5, 960, 160, True, "hswish", 1),
]
V3_SMALL = [
    (3, 16, 16, True, "relu", 2),
    (3, 72, 24, False, "relu", 2),
    (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hswish", 2),
    (5, 240, 40, True, "hswish", 1),
    (5, 240, 40, True, "hswish", 1),
    (5, 120, 48, True, "hswish", 1),
    (5, 144, 48, True, "hswish", 1),
    (5, 288, 96, True, "hswish", 2),
    (5, 576, 96, True, "hswish", 1),
    (5, 576, 96, True, "hswish", 1),
]


def v3_backbone(n: Net, cfg, scale: float, strides=None) -> tuple[list[tuple[str, int]], int]:
    """MobileNetV3 body. Returns (the output of each stride stage, with its channels) and the
    channels of the last; ``strides`` replaces the config's strides (OCR's (2, 1) strides)."""
    cin = make_divisible(16 * scale)
    x = n.conv("input", 3, cin, 3, 2, act="hswish")
    stages = []
    for i, (k, exp, c, se, act, s) in enumerate(cfg):
        s = strides[i] if strides else s
        exp, c = make_divisible(exp * scale), make_divisible(c * scale)
        if _pair(s) != (1, 1) and i > 0:
            stages.append((x, cin))
        y = x
        if exp != cin:
            y = n.conv(y, cin, exp, 1, act=act)
        y = n.conv(y, exp, exp, k, s, groups=exp, act=act)
        if se:
            r = make_divisible(exp // 4)
            g = n.conv(n.op("GlobalAveragePool", [y]), exp, r, 1, act="relu")
            y = n.op("Mul", [y, n.conv(g, r, exp, 1, act="hsig")])
        y = n.conv(y, exp, c, 1)
        x, cin = (n.op("Add", [x, y]) if _pair(s) == (1, 1) and cin == c else y), c
    last = make_divisible(cfg[-1][1] * scale)
    stages.append((n.conv(x, cin, last, 1, act="hswish"), last))
    return stages, last


def ocr_det(image: int = 640) -> onnx.ModelProto:
    n = Net(12)
    stages, _ = v3_backbone(n, V3_LARGE, 0.5)
    (c2, ch2), (c3, ch3), (c4, ch4), (c5, ch5) = stages[-4:]
    inner, out = 96, 24
    in2, in3, in4, in5 = (
        n.conv(c, ch, inner, 1, bias=False)
        for c, ch in ((c2, ch2), (c3, ch3), (c4, ch4), (c5, ch5))
    )
    o4 = n.op("Add", [in4, n.upsample(in5, 2)])
    o3 = n.op("Add", [in3, n.upsample(o4, 2)])
    o2 = n.op("Add", [in2, n.upsample(o3, 2)])
    p5, p4, p3, p2 = (n.conv(t, inner, out, 3, bias=False) for t in (in5, o4, o3, o2))
    fuse = n.op("Concat", [n.upsample(p5, 8), n.upsample(p4, 4), n.upsample(p3, 2), p2], axis=1)
    y = n.conv(fuse, inner, inner // 4, 3, act="relu")
    for cout, act in ((inner // 4, "relu"), (1, None)):
        w = n.rng.standard_normal((inner // 4, cout, 2, 2)) * math.sqrt(2.0 / (inner // 4 * 4))
        y = n.op(
            "ConvTranspose",
            [
                y,
                n.const("deconv_w", w.astype(np.float32)),
                n.const("b", np.zeros(cout, np.float32)),
            ],
            kernel_shape=[2, 2],
            strides=[2, 2],
        )
        y = n.act(y, act)
    return n.finish(
        n.op("Sigmoid", [y]),
        "maps",
        ["batch", 3, "height", "width"],
        ["batch", 1, "height", "width"],
        "ocr_det",
    )


def ocr_cls(h: int = 48, w: int = 192) -> onnx.ModelProto:
    n = Net(13)
    stages, last = v3_backbone(n, V3_SMALL, 0.35)
    logits = n.classifier(stages[-1][0], last, 2)
    return n.finish(
        n.op("Softmax", [logits], axis=-1), "probs", ["batch", 3, h, w], ["batch", 2], "ocr_cls"
    )


def lstm_layer(n: _Builder, x: str, d_in: int, hidden: int, bidirectional: bool) -> str:
    """One (bidirectional) LSTM layer on [seq, batch, d_in] -> [seq, batch, dirs*hidden], as
    PyTorch exports nn.LSTM (gates iofc, no initial state)."""
    dirs = 2 if bidirectional else 1
    k = 1 / math.sqrt(hidden)

    def u(shape):
        return n.const("lstm_w", n.rng.uniform(-k, k, shape).astype(np.float32))

    y = n.op(
        "LSTM",
        [x, u((dirs, 4 * hidden, d_in)), u((dirs, 4 * hidden, hidden)), u((dirs, 8 * hidden))],
        3,
        hidden_size=hidden,
        direction="bidirectional" if bidirectional else "forward",
    )[0]
    y = n.op("Transpose", [y], perm=[0, 2, 1, 3])  # [seq, batch, dirs, hidden]
    return n.op("Reshape", [y, n.const("shape", np.array([0, 0, -1], np.int64))])


def ocr_rec(h: int = 48, w: int = 320, classes: int = 6625, hidden: int = 96) -> onnx.ModelProto:
    n = Net(14)
    strides = [(2, 1) if s == 2 else 1 for *_, s in V3_SMALL]
    strides[0] = 2  # 24x160 -> 12x80, then (2,1) strides: 6x80, 3x80, 2x80
    stages, last = v3_backbone(n, V3_SMALL, 0.5, strides)
    x = n.op("MaxPool", [stages[-1][0]], kernel_shape=[2, 1], strides=[2, 1])  # 2x80 -> 1x80
    x = n.op("Squeeze", [x, n.const("axes", np.array([2], np.int64))])
    x = n.op("Transpose", [x], perm=[2, 0, 1])  # [seq, batch, channels]
    x = lstm_layer(n, x, last, hidden, True)
    x = lstm_layer(n, x, 2 * hidden, hidden, True)
    x = n.linear(n.op("Transpose", [x], perm=[1, 0, 2]), 2 * hidden, classes)
    return n.finish(
        n.op("Softmax", [x], axis=-1),
        "probs",
        ["batch", 3, h, w],
        ["batch", w // 4, classes],
        "ocr_rec",
    )


def yolo_n(image: int = 640, classes: int = 80) -> onnx.ModelProto:
    n = Net(15)

    def conv(x, cin, cout, k=1, s=1):
        return n.conv(x, cin, cout, k, s, act="silu")

    def c2f(x, cin, cout, reps, shortcut):
        c = cout // 2
        parts = list(
            n.op(
                "Split",
                [conv(x, cin, 2 * c), n.const("split", np.array([c, c], np.int64))],
                2,
                axis=1,
            )
        )
        for _ in range(reps):
            y = conv(conv(parts[-1], c, c, 3), c, c, 3)
            parts.append(n.op("Add", [parts[-1], y]) if shortcut else y)
        return conv(n.op("Concat", parts, axis=1), (2 + reps) * c, cout)

    def sppf(x, c):
        y = [conv(x, c, c // 2)]
        for _ in range(3):
            y.append(
                n.op("MaxPool", [y[-1]], kernel_shape=[5, 5], strides=[1, 1], pads=[2, 2, 2, 2])
            )
        return conv(n.op("Concat", y, axis=1), 2 * c, c)

    x = conv(conv("input", 3, 16, 3, 2), 16, 32, 3, 2)
    x = c2f(x, 32, 32, 1, True)
    p3 = c2f(conv(x, 32, 64, 3, 2), 64, 64, 2, True)
    p4 = c2f(conv(p3, 64, 128, 3, 2), 128, 128, 2, True)
    p5 = sppf(c2f(conv(p4, 128, 256, 3, 2), 256, 256, 1, True), 256)
    h4 = c2f(n.op("Concat", [n.upsample(p5, 2), p4], axis=1), 384, 128, 1, False)
    h3 = c2f(n.op("Concat", [n.upsample(h4, 2), p3], axis=1), 192, 64, 1, False)
    h4 = c2f(n.op("Concat", [conv(h3, 64, 64, 3, 2), h4], axis=1), 192, 128, 1, False)
    h5 = c2f(n.op("Concat", [conv(h4, 128, 128, 3, 2), p5], axis=1), 384, 256, 1, False)
    reg, no = 16, 4 * 16 + classes
    outs, anchors, strides = [], [], []
    for feat, c, stride in ((h3, 64, 8), (h4, 128, 16), (h5, 256, 32)):
        box = n.conv(conv(conv(feat, c, 64, 3), 64, 64, 3), 64, 4 * reg, 1)
        cls = n.conv(conv(conv(feat, c, 80, 3), 80, 80, 3), 80, classes, 1)
        y = n.op("Concat", [box, cls], axis=1)
        outs.append(n.op("Reshape", [y, n.const("shape", np.array([1, no, -1], np.int64))]))
        g = image // stride
        sy, sx = np.meshgrid(np.arange(g) + 0.5, np.arange(g) + 0.5, indexing="ij")
        anchors.append(np.stack([sx.ravel(), sy.ravel()]))
        strides.append(np.full(g * g, stride))
    y = n.op("Concat", outs, axis=2)
    box, cls = n.op(
        "Split", [y, n.const("split", np.array([4 * reg, classes], np.int64))], 2, axis=1
    )
    # distribution focal loss decoding: softmax over 16 bins, expectation by a fixed 1x1 conv
    total = sum(a.shape[1] for a in anchors)
    box = n.op("Reshape", [box, n.const("shape", np.array([1, 4, reg, total], np.int64))])
    box = n.op("Softmax", [n.op("Transpose", [box], perm=[0, 2, 1, 3])], axis=1)
    dfl = n.const("dfl_w", np.arange(reg, dtype=np.float32).reshape(1, reg, 1, 1))
    box = n.op(
        "Reshape", [n.op("Conv", [box, dfl]), n.const("shape", np.array([1, 4, total], np.int64))]
    )
    lt, rb = n.op("Split", [box, n.const("split", np.array([2, 2], np.int64))], 2, axis=1)
    anchor = n.const("anchors", np.concatenate(anchors, 1)[None].astype(np.float32))
    x1y1, x2y2 = n.op("Sub", [anchor, lt]), n.op("Add", [anchor, rb])
    cxy = n.op("Div", [n.op("Add", [x1y1, x2y2]), n.const("two", np.float32(2))])
    wh = n.op("Sub", [x2y2, x1y1])
    stride_c = n.const("strides", np.concatenate(strides)[None, None].astype(np.float32))
    boxes = n.op("Mul", [n.op("Concat", [cxy, wh], axis=1), stride_c])
    y = n.op("Concat", [boxes, n.op("Sigmoid", [cls])], axis=1)
    return n.finish(y, "output0", [1, 3, image, image], [1, 4 + classes, total], "yolo_n")


def image_feed(shape, seed: int = 0) -> dict[str, np.ndarray]:
    """An image-like input: values in [0, 1] as a preprocessed photo would be."""
    return {"input": np.random.default_rng(seed).random(shape, dtype=np.float32)}


MODELS = {
    "mobilenetv2_224": Spec(
        "mobilenetv2", mobilenet_v2, lambda: image_feed((1, 3, 224, 224)), "MobileNetV2 1.0"
    ),
    "shufflenetv2_224": Spec(
        "shufflenetv2", shufflenet_v2, lambda: image_feed((1, 3, 224, 224)), "ShuffleNetV2 1.0"
    ),
    "ocr_det_640": Spec(
        "ocr_det",
        ocr_det,
        lambda: image_feed((1, 3, 640, 640)),
        "DBNet-like, MobileNetV3-large 0.5",
    ),
    "ocr_cls_48x192": Spec(
        "ocr_cls", ocr_cls, lambda: image_feed((1, 3, 48, 192)), "MobileNetV3-small 0.35, 2 classes"
    ),
    "ocr_rec_48x320": Spec(
        "ocr_rec", ocr_rec, lambda: image_feed((1, 3, 48, 320)), "CRNN: MobileNetV3 + BiLSTM + CTC"
    ),
    "yolo_n_640": Spec(
        "yolo_n", yolo_n, lambda: image_feed((1, 3, 640, 640)), "YOLOv8n-like, 8400 boxes"
    ),
}
