"""Control flow: If, Loop, Scan. Bodies are subgraph plans built by the core; outer-scope values
arrive as implicit inputs and are bound per run (see ``KernelInfo.split_implicit``)."""

from __future__ import annotations

import numpy as np

from ort_core.ir import tensor_dtype

from ._registry import builder


def _as_bool(cond) -> bool:
    arr = np.asarray(cond)
    if arr.size != 1:
        raise ValueError(f"condition must hold exactly one element, got shape {arr.shape}")
    return bool(arr.reshape(-1)[0])


@builder("If", since=(1, 11, 13, 16, 19, 21, 23, 24, 25))
def if_(info):
    def run(*args):
        (cond,), bound = info.split_implicit(args)
        branch = bound["then_branch"] if _as_bool(cond) else bound["else_branch"]
        return branch()

    return run


def _empty_like_output(runner, index: int) -> np.ndarray:
    """An empty scan output (zero iterations), typed from the body's declared output."""
    graph = runner.plan.graph
    name = graph.outputs[index]
    dtype = tensor_dtype(graph.value_types.get(name)) or np.dtype(np.float32)
    return np.empty((0,), dtype=dtype)


@builder("Loop", since=(1, 11, 13, 16, 19, 21, 23, 24, 25))
def loop(info):
    runner = info.subgraph("body")
    n_carried = info.num_inputs - 2
    n_scan = len(runner.outputs) - 1 - n_carried

    def run(*args):
        (max_trip, cond, *carried), bound = info.split_implicit(args)
        body = bound["body"]
        trips = None if max_trip is None else int(np.asarray(max_trip).reshape(-1)[0])
        keep_going = True if cond is None else _as_bool(cond)
        scans: list[list] = [[] for _ in range(n_scan)]
        i = 0
        while keep_going and (trips is None or i < trips):
            outs = body(np.array(i, dtype=np.int64), np.array(keep_going), *carried)
            keep_going = _as_bool(outs[0])
            carried = list(outs[1 : 1 + n_carried])
            for k in range(n_scan):
                scans[k].append(outs[1 + n_carried + k])
            i += 1
        stacked = [
            np.stack(s) if s else _empty_like_output(runner, 1 + n_carried + k)
            for k, s in enumerate(scans)
        ]
        return [*carried, *stacked]

    return run


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
