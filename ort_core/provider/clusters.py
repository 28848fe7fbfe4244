"""Helpers for compiling providers: group supported nodes into fusable (convex) clusters."""

from __future__ import annotations

from collections.abc import Iterable

from ..ir import Graph, Node, node_reads


def convex_clusters(graph: Graph, supported: Iterable[Node]) -> list[list[Node]]:
    """Group ``supported`` nodes into maximal clusters that can each be fused without a cycle.

    Nodes are visited in topological order. A supported node joins the cluster of a supported
    producer unless some other path reaches it from that cluster through a node outside the
    cluster (fusing would then make the cluster depend on itself); clusters that a node connects are
    merged under the same rule. Each cluster is returned in topological order.
    """

    order = {id(n): i for i, n in enumerate(graph.nodes)}
    sup = {id(n) for n in supported}
    producers = graph.producers()
    parent: dict[int, int] = {}

    def find(c: int) -> int:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    cluster_of: dict[int, int] = {}  # node id -> cluster id (pre-find)
    anc: dict[int, set[int]] = {}  # node id -> clusters it depends on (itself included)
    reach: dict[int, set[int]] = {}  # cluster -> clusters it depends on through outside nodes
    members: dict[int, list[Node]] = {}

    def roots(s: set[int]) -> set[int]:
        return {find(c) for c in s}

    for n in graph.nodes:
        preds = [producers[x] for x in dict.fromkeys(node_reads(n)) if x in producers]
        ancestors: set[int] = set()
        for p in preds:
            ancestors |= anc[id(p)]
        if id(n) in sup:
            cands = []
            for p in preds:
                if id(p) in cluster_of:
                    c = find(cluster_of[id(p)])
                    if c in cands:
                        continue
                    ok = all(
                        c not in roots(anc[id(q)])
                        for q in preds
                        if id(q) not in cluster_of or find(cluster_of[id(q)]) != c
                    )
                    if ok:
                        cands.append(c)
            if cands:
                target = cands[0]
                for c in cands[1:]:
                    if target in roots(reach[c]) or c in roots(reach[target]):
                        continue
                    parent[c] = target
                    members[target].extend(members.pop(c))
                    reach[target] = roots(reach[target] | reach.pop(c)) - {target}
            else:
                target = len(parent)
                parent[target] = target
                members[target] = []
                reach[target] = set()
            cluster_of[id(n)] = target
            members[target].append(n)
            for q in preds:
                qc = find(cluster_of[id(q)]) if id(q) in cluster_of else None
                if qc != target:
                    reach[target] |= roots(anc[id(q)]) - {qc, target}
            ancestors.add(target)
        anc[id(n)] = ancestors
    result = [sorted(ms, key=lambda m: order[id(m)]) for ms in members.values() if ms]
    result.sort(key=lambda c: order[id(c[0])])
    return result
