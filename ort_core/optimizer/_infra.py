"""Pass infrastructure: levels, the pass contract, the registry, and the fixed-point driver.

A pass is an object with a unique ``name``, a ``level``, ``in_place`` (True: it edits the model it is
given) and ``__call__(model, ctx) -> bool`` returning whether it changed anything. BASIC passes run
before partitioning, for every provider. EXTENDED and LAYOUT passes run after partitioning and may
only create an op on a node whose provider runs that op (``ctx.provider_supports(node, domain, op)``).
Each level runs its passes in order, repeatedly, until none changes the model (a fixed point).
A pass may also have ``triggers``: op types of which the model must hold one for the pass to
change anything; the driver skips it for a model without them (checked at each round's start).
The built-in passes are listed with theirs in :data:`BUILTIN_PASSES` and imported when they
first run.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

from ..errors import InvalidArgument
from ..ir import Graph, Model, Node
from ..options import GraphOptimizationLevel
from ._util import all_graphs, remove_unused_initializers

__all__ = [
    "GraphOptimizationLevel",
    "GraphPass",
    "PassContext",
    "OptimizationReport",
    "builtin_passes",
    "all_passes",
    "optimize",
]

#: Rounds of a level before the driver gives up on reaching a fixed point.
MAX_ROUNDS = 10


class GraphPass:
    """Base class of optimizer passes (subclassing is optional: the contract is duck-typed)."""

    name: ClassVar[str] = ""
    level: ClassVar[GraphOptimizationLevel] = GraphOptimizationLevel.ORT_ENABLE_BASIC
    in_place: ClassVar[bool] = True
    #: restrict the pass to nodes of these providers (None: any)
    providers: ClassVar[tuple[str, ...] | None] = None
    #: op types of which the model must hold one for the pass to change anything (None: any)
    triggers: ClassVar[frozenset[str] | None] = None

    def __call__(self, model: Model, ctx: PassContext) -> bool:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<pass {self.name} level={int(self.level)}>"


@dataclass
class PassContext:
    """What passes may use: the session's providers and options, and helpers."""

    providers: list[Any] = field(default_factory=list)
    session_options: Any = None
    #: largest constant (in elements) that constant folding may create. Generous, as in
    #: onnxruntime (which folds whatever size): a value left as a node is computed every run and
    #: takes as much memory then, and a weight left as a node (VGG-19's 25088 x 4096 and
    #: ResNet-50's 512x512x3x3 ConstantOfShape weights) cannot be prepacked or have a
    #: BatchNormalization folded into it (VGG-19 spent 14 ms of every run on one). Only the
    #: saved optimized model grows; the limit keeps out absurd expansions (2**28 elements: 1 GiB
    #: of float32).
    fold_size_limit: int = 1 << 28
    #: per graph (by identity): the value types of its enclosing graphs (set after partitioning)
    outer_types: dict[int, dict] = field(default_factory=dict)
    #: the providers the running pass is restricted to (its ``providers``; None: any)
    allowed: tuple[str, ...] | None = None
    #: constant folding leaves DequantizeLinear nodes for the QDQ fusions (and for providers that
    #: compute QDQ groups in integers) to see; ConstantFoldingDQ folds the rest after them. Set
    #: by the session when the level reaches EXTENDED and the QDQ fusions are not disabled.
    keep_dequantize: bool = False
    _cpu: Any = None

    def provider_of(self, node: Node) -> Any:
        for ep in self.providers:
            if ep.name == node.provider:
                return ep
        return None

    def declines(self, model: Model, g: Graph, node: Node) -> Any:
        """Why the provider assigned to ``node`` would not run it (a ``Decline``), or None when it
        would. Passes ask before inserting a node they made (see ``_fusion.accepted``)."""
        from ..provider import Decline, GraphView

        ep = self.provider_of(node)
        if ep is None:
            return Decline(f"{node.label()} has no provider", "limit")
        if self.allowed is not None and ep.name not in self.allowed:
            return Decline(f"the pass is restricted to {', '.join(self.allowed)}", "limit")
        info = GraphView(g, model.opset_imports, self.outer_types.get(id(g))).kernel_info(node, ep)
        return ep.decline(info)

    def provider_supports(self, node: Node, domain: str, op_type: str, since: int = 1) -> bool:
        """Whether the provider assigned to ``node`` runs ``domain::op_type`` (fusions ask first);
        False for a node of a provider the running pass is not restricted to."""
        ep = self.provider_of(node)
        if ep is None or (self.allowed is not None and ep.name not in self.allowed):
            return False
        return ep.supports_op(domain, op_type, since)

    def cpu_provider(self) -> Any:
        """An instance of the CPU provider, for constant folding (None when not installed)."""
        if self._cpu is None:
            for ep in self.providers:
                if ep.name == "CPUExecutionProvider":
                    self._cpu = ep
                    break
            else:
                from ..plugins import get_plugin_manager

                entry = get_plugin_manager().resolve("CPUExecutionProvider")
                self._cpu = entry.cls({}) if entry is not None else False
        return self._cpu or None


@dataclass
class OptimizationReport:
    """Which passes changed the model, how often, and the node counts before and after."""

    nodes_before: int = 0
    nodes_after: int = 0
    applied: dict[str, int] = field(default_factory=dict)

    def merge(self, later: OptimizationReport) -> None:
        """Add the passes of a later stage; the node count after is the later stage's."""
        for name, count in later.applied.items():
            self.applied[name] = self.applied.get(name, 0) + count
        self.nodes_after = later.nodes_after


class _Entry(NamedTuple):
    """A built-in pass as the driver knows it before its module is imported."""

    module: str
    name: str
    level: GraphOptimizationLevel
    #: op types of which a model must hold one for the pass to change anything (any domain;
    #: None: any model). The driver skips the pass, and leaves its module unimported, for a
    #: model without them: a scikit-learn model's session imports 5 pass modules, not 26.
    triggers: frozenset[str] | None


_BASIC = GraphOptimizationLevel.ORT_ENABLE_BASIC
_EXTENDED = GraphOptimizationLevel.ORT_ENABLE_EXTENDED

#: ort_core.optimizer.passes' passes, in the order they run within a level
BUILTIN_PASSES: tuple[_Entry, ...] = (
    _Entry("constant_to_initializer", "ConstantToInitializer", _BASIC, None),
    _Entry("eliminate_identity", "EliminateIdentity", _BASIC, frozenset({"Identity"})),
    _Entry("eliminate_dropout", "EliminateDropout", _BASIC, frozenset({"Dropout"})),
    _Entry("eliminate_noop", "EliminateNoopNodes", _BASIC, None),
    _Entry("constant_folding", "ConstantFolding", _BASIC, None),
    _Entry("eliminate_dead_code", "EliminateDeadCode", _BASIC, None),
    _Entry("common_subexpression", "CommonSubexpressionElimination", _BASIC, None),
    _Entry("reshape_chain", "ReshapeChainFusion", _BASIC, frozenset({"Reshape"})),
    _Entry("transpose_optimizer", "TransposeOptimizer", _BASIC, frozenset({"Transpose"})),
    _Entry("conv_bn_fusion", "ConvBNFusion", _BASIC, frozenset({"BatchNormalization"})),
    _Entry("conv_add_mul_fusion", "ConvAddMulFusion", _BASIC, frozenset({"Conv"})),
    _Entry("bn_mul_add_fusion", "BatchNormMulAddFusion", _BASIC, frozenset({"BatchNormalization"})),
    _Entry("pad_fusion", "PadFusion", _BASIC, frozenset({"Pad"})),
    _Entry("matmul_add_to_gemm", "MatMulAddFusion", _BASIC, frozenset({"MatMul"})),
    _Entry("qdq_drop", "QDQDrop", _EXTENDED, frozenset({"DequantizeLinear"})),
    _Entry("qdq_fusion", "QDQFusion", _EXTENDED, frozenset({"QuantizeLinear"})),
    _Entry("constant_folding_dq", "ConstantFoldingDQ", _EXTENDED, frozenset({"DequantizeLinear"})),
    _Entry("layer_norm_fusion", "LayerNormFusion", _EXTENDED, frozenset({"ReduceMean"})),
    _Entry(
        "gelu_fusion",
        "GeluFusion",
        _EXTENDED,
        frozenset({"Erf", "Tanh", "Sigmoid", "Gelu", "FastGelu"}),
    ),
    _Entry(
        "skip_layer_norm_fusion",
        "SkipLayerNormFusion",
        _EXTENDED,
        frozenset({"LayerNormalization", "SimplifiedLayerNormalization"}),
    ),
    _Entry("attention_fusion", "AttentionFusion", _EXTENDED, frozenset({"Softmax"})),
    _Entry("matmul_scale_fusion", "MatMulScaleFusion", _EXTENDED, frozenset({"MatMul"})),
    _Entry("conv_activation_fusion", "ConvActivationFusion", _EXTENDED, frozenset({"Conv"})),
    _Entry("conv_add_activation_fusion", "ConvAddActivationFusion", _EXTENDED, frozenset({"Conv"})),
    _Entry(
        "bn_activation_fusion",
        "BatchNormActivationFusion",
        _EXTENDED,
        frozenset({"BatchNormalization"}),
    ),
    _Entry("gemm_activation_fusion", "GemmActivationFusion", _EXTENDED, frozenset({"Gemm"})),
)
#: their modules, in that order
BUILTIN_PASS_MODULES = tuple(e.module for e in BUILTIN_PASSES)


class _LazyPass:
    """A built-in pass by its :data:`BUILTIN_PASSES` entry; its module is imported when it first
    runs (name, level and triggers are the entry's; ``tests/unit/test_optimizer_table.py``
    checks them against the module's ``PASS``)."""

    in_place = True
    providers = None

    def __init__(self, entry: _Entry) -> None:
        self.name = entry.name
        self.level = entry.level
        self.triggers = entry.triggers
        self._entry = entry
        self._pass: Any = None

    def load(self) -> Any:
        """The module's ``PASS`` (imported on the first call)."""
        if self._pass is None:
            mod = importlib.import_module(f"{__package__}.passes.{self._entry.module}")
            self._pass = mod.PASS
        return self._pass

    def __call__(self, model: Model, ctx: PassContext) -> bool:
        return self.load()(model, ctx)

    def __repr__(self) -> str:
        return f"<pass {self.name} level={int(self.level)}>"


def builtin_passes() -> list[Any]:
    """One instance of every pass shipped with the core, in running order (each module imported
    when its pass first runs)."""
    return [_LazyPass(e) for e in BUILTIN_PASSES]


def all_passes() -> list[Any]:
    """Built-in passes followed by the passes plugins registered (``ort_register_passes``)."""
    from ..errors import PluginError
    from ..plugins import get_plugin_manager

    builtin = builtin_passes()
    pm = get_plugin_manager()
    names = {p.name for p in builtin}
    for p in pm.passes:
        if p.name in names:
            raise PluginError(
                f"plugin {pm.plugin_label(pm.pass_owner.get(p.name, '?'))} registers an optimizer "
                f"pass named '{p.name}', which is the name of an ort-core built-in pass. Pass "
                "names must be unique; rename the plugin's pass."
            )
    return builtin + list(pm.passes)


def check_disabled(names: Iterable[str], passes: list[Any]) -> set[str]:
    """Validate the names of passes the user disabled.

    Raises:
        InvalidArgument: a name that no pass has.
    """
    known = {p.name for p in passes}
    names = {n.strip() for n in names if n and n.strip()}
    unknown = sorted(names - known)
    if unknown:
        raise InvalidArgument(
            f"Unknown optimizer pass(es) {unknown} in the disabled list. Known passes: "
            f"{', '.join(sorted(known))}."
        )
    return names


def _run_level(
    model: Model, passes: list[Any], ctx: PassContext, report: OptimizationReport
) -> None:
    for _ in range(MAX_ROUNDS):
        changed = False
        # the op types present at the round's start: a pass that makes an op another pass
        # waits for changes the model, so the next round sees it
        ops = {n.op_type for g in all_graphs(model) for n in g.nodes}
        for p in passes:
            triggers = getattr(p, "triggers", None)
            if triggers is not None and triggers.isdisjoint(ops):
                continue
            restricted = getattr(p, "providers", None)
            ctx.allowed = tuple(restricted) if restricted is not None else None
            try:
                if p(model, ctx):
                    changed = True
                    report.applied[p.name] = report.applied.get(p.name, 0) + 1
            finally:
                ctx.allowed = None
        if not changed:
            return


def _applies(p: Any, ctx: PassContext) -> bool:
    """False for a pass restricted to providers none of which the session uses."""
    restricted = getattr(p, "providers", None)
    return restricted is None or any(ep.name in restricted for ep in ctx.providers)


def count_nodes(graph: Graph) -> int:
    return sum(1 for _ in graph.walk())


def optimize(
    model: Model,
    level: int,
    ctx: PassContext,
    *,
    stage: str,
    disabled: Iterable[str] = (),
    passes: list[Any] | None = None,
) -> OptimizationReport:
    """Run the passes of ``stage`` ("basic": BASIC, before partitioning; "provider": EXTENDED and
    LAYOUT, after) up to ``level``, each level to a fixed point."""
    passes = all_passes() if passes is None else passes
    skip = check_disabled(disabled, passes)
    report = OptimizationReport(nodes_before=count_nodes(model.graph))
    levels = (
        [GraphOptimizationLevel.ORT_ENABLE_BASIC]
        if stage == "basic"
        else [GraphOptimizationLevel.ORT_ENABLE_EXTENDED, GraphOptimizationLevel.ORT_ENABLE_LAYOUT]
    )
    for lv in levels:
        if int(level) < int(lv):
            continue
        chosen = [
            p for p in passes if int(p.level) == int(lv) and p.name not in skip and _applies(p, ctx)
        ]
        if chosen:
            before = sum(report.applied.values())
            _run_level(model, chosen, ctx, report)
            changed = sum(report.applied.values()) != before
            # fusions leave the weights they replaced (e.g. Q, K, V once concatenated for
            # Attention) unread: drop them so the session does not hold both copies
            for g in all_graphs(model):
                remove_unused_initializers(g)
                # a pass that put a fused node where its first input was made instead of where
                # its last one is must not hand the partitioner and the planner an unordered graph
                if changed:
                    g.sort()
    report.nodes_after = count_nodes(model.graph)
    return report
