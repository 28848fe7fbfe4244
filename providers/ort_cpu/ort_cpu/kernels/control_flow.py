"""Control flow: If, Loop, Scan. Bodies are subgraph plans built by the core; outer-scope values
arrive as implicit inputs and are bound per run (see ``KernelInfo.split_implicit``).

A Loop whose body is a few small numpy operations (an RNN cell written out as MatMul, Add, Tanh)
spends most of each iteration in per-node overhead: the plan's bookkeeping and each kernel's
checks, several times the arithmetic. When every step of the body is one of the plain operations
in :data:`_DIRECT`, run by this provider on float tensors, the Loop runs the body's steps itself
as direct numpy calls on the plan's slots, inside one generated loop (:func:`_direct_loop`);
any other body takes the plan.
"""

from __future__ import annotations

import sys

import numpy as np

from ort_core.ir import tensor_dtype, tensor_shape

from ._registry import builder
from ._rows import ranked


def _read_only(value) -> np.ndarray:
    a = np.array(value)
    a.flags.writeable = False
    return a


#: the Loop's condition and iteration-number inputs, made once (read-only 0-d arrays: a body
#: cannot change them, and may keep them: a scan output of the iteration number)
_TRUE = _read_only(True)
_ITERATIONS = [_read_only(np.int64(i)) for i in range(1024)]


def _iteration(i: int) -> np.ndarray:
    return _ITERATIONS[i] if i < 1024 else np.array(i, dtype=np.int64)


def _as_bool(cond) -> bool:
    if cond is _TRUE:  # the body passed the condition through
        return True
    arr = cond if cond.__class__ is np.ndarray else np.asarray(cond)
    if arr.size != 1:
        raise ValueError(f"condition must hold exactly one element, got shape {arr.shape}")
    return bool(arr)


@builder("If", since=(1, 11, 13, 16, 19, 21, 23, 24, 25))
def if_(info):
    # per branch: its plan and where each of its outer-scope values sits in the arguments,
    # so that a run binds only the branch it takes (binding both through split_implicit cost
    # about a microsecond)
    n = len(info.node.inputs)
    at = {name: n + i for i, name in enumerate(info.implicit_inputs)}
    branches = []
    for key in ("then_branch", "else_branch"):
        runner = info.subgraph(key)
        branches.append((runner.plan, [at.get(name) for name in runner.outer_names]))
    then_plan, then_at = branches[0]
    else_plan, else_at = branches[1]

    def run(*args):
        plan, where = (then_plan, then_at) if _as_bool(args[0]) else (else_plan, else_at)
        return plan.run([None if i is None else args[i] for i in where])

    return run


def _gemm(node):
    trans_a, trans_b = bool(node.attr("transA", 0)), bool(node.attr("transB", 0))
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))

    def gemm(a, b, c=None):
        y = np.dot(a.T if trans_a else a, b.T if trans_b else b)
        if alpha != 1.0:
            y *= alpha
        if c is not None:
            y += c if beta == 1.0 else beta * c
        return y

    return gemm


def _gather(node):
    axis = int(node.attr("axis", 0))

    def gather(data, idx):
        if axis == 0 and idx.ndim == 0:  # one row: a view, as np.take would copy it
            return data[int(idx)]
        return np.take(data, idx, axis=axis)

    return gather


def _matmul(a, b):
    return np.dot(a, b) if a.ndim == 2 and b.ndim == 2 else np.matmul(a, b)


#: op -> (factory of the numpy function for a node, which inputs may be of any dtype (the rest
#: must be float32/float64), which must be integers)
_DIRECT = {
    "Add": (lambda node: np.add, (), ()),
    "Sub": (lambda node: np.subtract, (), ()),
    "Mul": (lambda node: np.multiply, (), ()),
    "Neg": (lambda node: np.negative, (), ()),
    "MatMul": (lambda node: _matmul, (), ()),
    "Gemm": (_gemm, (), ()),
    "Tanh": (lambda node: np.tanh, (), ()),
    "Relu": (lambda node: lambda x: np.maximum(x, 0), (), ()),
    "Identity": (lambda node: lambda x: x, (0,), ()),
    "Gather": (_gather, (0,), (1,)),
}
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _direct_body(info, runner) -> tuple[list[str], dict] | None:
    """The body plan's steps as statements of direct numpy calls on the slots list ``s`` (and
    the names they use), or None when a step is not one :data:`_DIRECT` covers (another
    provider, a copy, a fused subgraph, another op, a dtype that is not float or unknown)."""
    plan = runner.plan
    provider = getattr(info.provider, "name", None)
    if provider is None:
        return None
    types = plan.graph.value_types
    env = {"ndarray": np.ndarray, "asarray": np.asarray}
    lines: list[str] = []
    for k, st in enumerate(plan.steps):
        node = st.node
        entry = _DIRECT.get(node.op_type)
        if entry is None or st.kind != "kernel" or st.provider != provider or node.domain:
            return None
        if st.multi or len(st.outs) != 1 or len(st.ins) != len(node.inputs):
            return None
        make, any_dtype, integer = entry
        for j, (name, slot) in enumerate(zip(node.inputs, st.ins)):
            if not name or j in any_dtype:
                continue
            const = plan.base[slot]
            dt = const.dtype if isinstance(const, np.ndarray) else tensor_dtype(types.get(name))
            if dt is None or (dt.kind not in "iu" if j in integer else dt not in _FLOATS):
                return None
        if node.op_type == "Identity":  # the same array in the output's slot
            lines.append(f"s[{st.outs[0]}] = s[{st.ins[0]}]")
            continue
        env[f"f{k}"] = make(node)
        args = ", ".join(
            _ranked_constant(env, plan, types, node, st, j) or f"s[{i}]"
            for j, i in enumerate(st.ins)
        )
        # a ufunc of 0-d arrays returns a numpy scalar: values in slots are arrays
        lines.append(f"r = f{k}({args})")
        lines.append(f"s[{st.outs[0]}] = r if r.__class__ is ndarray else asarray(r)")
    return lines, env


def _direct_loop(info, runner, n_carried: int):
    """The whole loop over a :func:`_direct_body` as one generated function ``loop(s, trips,
    keep, appends)``: iterations while ``keep`` and below ``trips``, each setting the iteration
    number, running the body's statements, reading the condition, appending the scan outputs
    (``appends``: one list's ``append`` per scan output) and moving the carried values into
    their input slots; returns the iterations run. The carried values end in those slots.
    None where the body has no direct form. A Python loop around a body function spent 2 us
    an iteration in its bookkeeping (an RNN cell of 32 steps: 200 -> 150 us)."""
    body = _direct_body(info, runner)
    if body is None:
        return None
    statements, env = body
    plan = runner.plan
    n_in = len(runner.inputs)
    i_slot = plan.input_slots[0]
    carried_in = plan.input_slots[2:n_in]
    cond_out, *out_slots = plan.output_slots
    carried_out, scan_out = out_slots[:n_carried], out_slots[n_carried:]
    env.update(TRUE=_TRUE, as_bool=_as_bool, ITERATIONS=_ITERATIONS, iteration=_iteration)
    n = len(_ITERATIONS)
    lines = ["def loop(s, trips, keep, appends):"]
    lines += [f"    a{k} = appends[{k}]" for k in range(len(scan_out))]
    lines += ["    i = 0", "    while keep and i < trips:"]
    lines.append(f"        s[{i_slot}] = ITERATIONS[i] if i < {n} else iteration(i)")
    lines += [f"        {line}" for line in statements]
    lines += [f"        c = s[{cond_out}]", "        keep = c is TRUE or as_bool(c)"]
    lines += [f"        a{k}(s[{slot}])" for k, slot in enumerate(scan_out)]
    if carried_in:  # all read before any is written: an output may be another's input slot
        targets = ", ".join(f"s[{slot}]" for slot in carried_in)
        values = ", ".join(f"s[{slot}]" for slot in carried_out)
        lines.append(f"        {targets}, = {values},")
    lines += ["        i += 1", "    return i"]
    exec(compile("\n".join(lines), "<ort_cpu Loop body>", "exec"), env)  # noqa: S102 - ours
    return env["loop"]


#: ops whose constant operand of lower rank is given the other operand's rank once (numpy
#: broadcasts a (128,) bias onto (1, 128) 0.5 us slower than a (1, 128) one), as is Gemm's C
_BROADCAST = ("Add", "Sub", "Mul")


def _ranked_constant(env, plan, types, node, st, j: int) -> str | None:
    """The name in ``env`` of input ``j`` of a :data:`_BROADCAST` step where it is a constant of
    lower rank than the other input, or of a Gemm's C of rank below 2 (ones prepended: the
    same broadcast), else None."""
    const = plan.base[st.ins[j]]
    if not isinstance(const, np.ndarray):
        return None
    if node.op_type == "Gemm" and j == 2:  # C, added to the 2-D product
        rank = 2
    elif node.op_type in _BROADCAST and len(st.ins) == 2:
        other = tensor_shape(types.get(node.inputs[1 - j]))
        rank = -1 if other is None else len(other)
    else:
        return None
    if rank <= const.ndim:
        return None
    name = f"c{len(env)}"
    env[name] = ranked(const, rank)
    return name


def _stacked(values: list) -> np.ndarray:
    """``np.stack(values)``: where all have one shape (a Loop's scan outputs, one per
    iteration), as one concatenation (32 values of (1, 128): 12.3 -> 4.7 us)."""
    first = values[0]
    shape = first.shape
    if first.ndim and all(v.shape == shape for v in values):
        return np.concatenate(values).reshape(len(values), *shape)
    return np.stack(values)


def _empty_like_output(runner, index: int) -> np.ndarray:
    """An empty scan output (zero iterations), typed from the body's declared (or inferred)
    output: (0, *its shape) when that shape is static, as onnxruntime gives, else (0,)."""
    graph = runner.plan.graph
    name = graph.outputs[index]
    vt = graph.value_types.get(name)
    dtype = tensor_dtype(vt) or np.dtype(np.float32)
    dims = tensor_shape(vt)
    if dims is not None and all(isinstance(d, int) and d >= 0 for d in dims):
        return np.empty((0, *dims), dtype=dtype)
    return np.empty((0,), dtype=dtype)


@builder("Loop", since=(1, 11, 13, 16, 19, 21, 23, 24, 25))
def loop(info):
    runner = info.subgraph("body")
    n_carried = info.num_inputs - 2
    n_scan = len(runner.outputs) - 1 - n_carried
    prog = _direct_loop(info, runner, n_carried)

    def stack(scans):
        return [
            _stacked(s) if s else _empty_like_output(runner, 1 + n_carried + k)
            for k, s in enumerate(scans)
        ]

    def run(*args):
        (max_trip, cond, *carried), bound = info.split_implicit(args)
        body = bound["body"]
        trips = None if max_trip is None else int(np.asarray(max_trip).reshape(-1)[0])
        keep_going = True if cond is None else _as_bool(cond)
        scans: list[list] = [[] for _ in range(n_scan)]
        i = 0
        while keep_going and (trips is None or i < trips):
            outs = body(_iteration(i), _TRUE, *carried)
            keep_going = _as_bool(outs[0])
            carried = list(outs[1 : 1 + n_carried])
            for k in range(n_scan):
                scans[k].append(outs[1 + n_carried + k])
            i += 1
        return [*carried, *stack(scans)]

    if prog is None:
        return run
    plan = runner.plan
    n_in = len(runner.inputs)
    cond_slot = plan.input_slots[1]
    carried_slots = plan.input_slots[2:n_in]
    outer_slots = plan.input_slots[n_in:]
    n_explicit = info.num_inputs

    def run_direct(*args):
        max_trip, cond, *carried = args[:n_explicit]
        outer = dict(zip(info.implicit_inputs, args[n_explicit:]))
        slots = plan.base.copy()
        for slot, name in zip(outer_slots, runner.outer_names):
            slots[slot] = outer.get(name)
        trips = sys.maxsize if max_trip is None else int(np.asarray(max_trip).reshape(-1)[0])
        keep_going = True if cond is None else _as_bool(cond)
        slots[cond_slot] = _TRUE  # iterations run only while the condition holds
        for slot, value in zip(carried_slots, carried):
            slots[slot] = value
        scans: list[list] = [[] for _ in range(n_scan)]
        prog(slots, trips, keep_going, [s.append for s in scans])
        return [*(slots[slot] for slot in carried_slots), *stack(scans)]

    return run_direct


def _norm(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


@builder("Scan", since=(9, 11, 16, 19, 21, 23, 24, 25))
def scan(info):
    runner = info.subgraph("body")
    n_scan_in = info.attr("num_scan_inputs")
    n_in = info.num_inputs
    n_state = n_in - n_scan_in
    n_scan_out = len(runner.outputs) - n_state
    in_axes = info.attr("scan_input_axes") or [0] * n_scan_in
    in_dirs = info.attr("scan_input_directions") or [0] * n_scan_in
    out_axes = info.attr("scan_output_axes") or [0] * n_scan_out
    out_dirs = info.attr("scan_output_directions") or [0] * n_scan_out

    def run(*args):
        explicit, bound = info.split_implicit(args)
        body = bound["body"]
        state = list(explicit[:n_state])
        seqs = []
        for k, x in enumerate(explicit[n_state:]):
            x = np.moveaxis(x, _norm(in_axes[k], x.ndim), 0)
            seqs.append(x[::-1] if in_dirs[k] else x)
        steps = seqs[0].shape[0] if seqs else 0
        collected: list[list] = [[] for _ in range(n_scan_out)]
        for t in range(steps):
            outs = body(*state, *[s[t] for s in seqs])
            state = list(outs[:n_state])
            for k in range(n_scan_out):
                collected[k].append(outs[n_state + k])
        results = []
        for k, items in enumerate(collected):
            if not items:
                results.append(_empty_like_output(runner, n_state + k))
                continue
            if out_dirs[k]:
                items = items[::-1]
            y = np.stack(items)
            results.append(np.moveaxis(y, 0, _norm(out_axes[k], y.ndim)))
        return [*state, *results]

    return run


@builder("Scan", since=8)
def scan_v8(info):
    """Opset 8: a batch axis first, optional sequence_lens as input 0, directions attribute."""
    runner = info.subgraph("body")
    n_scan_in = info.attr("num_scan_inputs")
    n_state = info.num_inputs - 1 - n_scan_in
    n_scan_out = len(runner.outputs) - n_state
    dirs = info.attr("directions") or [0] * n_scan_in

    def run(*args):
        explicit, bound = info.split_implicit(args)
        body = bound["body"]
        seq_lens = explicit[0]
        states = explicit[1 : 1 + n_state]
        scans = explicit[1 + n_state :]
        batch = (scans[0] if scans else states[0]).shape[0]
        final_states: list[list] = [[] for _ in range(n_state)]
        outputs: list[list] = [[] for _ in range(n_scan_out)]
        for b in range(batch):
            state = [s[b] for s in states]
            length = scans[0].shape[1] if seq_lens is None else int(np.asarray(seq_lens)[b])
            seqs = [
                (x[b][:length][::-1] if dirs[k] else x[b][:length]) for k, x in enumerate(scans)
            ]
            items: list[list] = [[] for _ in range(n_scan_out)]
            for t in range(length):
                outs = body(*state, *[s[t] for s in seqs])
                state = list(outs[:n_state])
                for k in range(n_scan_out):
                    items[k].append(outs[n_state + k])
            for k in range(n_state):
                final_states[k].append(state[k])
            for k in range(n_scan_out):
                outputs[k].append(
                    np.stack(items[k]) if items[k] else _empty_like_output(runner, n_state + k)
                )
        return [np.stack(s) for s in final_states] + [np.stack(o) for o in outputs]

    return run
