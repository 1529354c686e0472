"""A fast stand-in for the BSDS benchmark's pixel matcher, for model selection (``matcher: fast``).

The benchmark's ``correspondPixels`` (pyEdgeEval's port of Martin's C++) solves a min-cost perfect
matching (Goldberg's CSA) between predicted and ground-truth edge pixels: an edge joins two pixels
at most ``r = tolerance x diagonal`` apart (cost: their distance), and random sparse "outlier"
edges (cost 100 r) let every pixel stay unmatched.  An outlier costs far more than any real edge,
so the solution is, up to the randomness of the sparse outlier graph, a **maximum-cardinality
matching** of the pixel graph; the counts the benchmark uses (matched predicted pixels, matched
ground-truth pixels) are that matching's size.

Here: the same graph (pixel pairs with distance <= r, found with ``scipy.spatial.cKDTree``) and
its exact maximum matching (Hopcroft-Karp, ``scipy.sparse.csgraph.maximum_bipartite_matching``),
with the candidate pairs of all thresholds found in one tree query per annotator.  Precision and
recall follow the benchmark: a predicted pixel counts if any annotator's matching uses it, every
annotator's matched pixels count towards recall.  A maximum matching is not unique and the
benchmark's is also of least total distance, so the predicted pixels it uses (their union over
annotators is the precision count) are the nearest ones; here a greedy nearest-first matching,
augmented, approximates that.  Measured (under load): on a BSDS val image with a peaked synthetic
map the counts agree within 0.3%; on a 2-step model's dense, noisy map recall counts agree within
0.02% but precision counts are 3-4% higher.  Report figures with the benchmark matcher.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _graph_matching(
    pairs_p: np.ndarray, pairs_g: np.ndarray, n_p: int, n_g: int, dist: np.ndarray | None = None
) -> np.ndarray:
    """Maximum matching of the bipartite graph with edges ``(pairs_p[k], pairs_g[k])`` ->
    bool ``n_p``: which predicted pixels are matched (the matching's size is their count).

    A vectorised greedy pass (each free pixel proposes to its nearest free partner, each partner
    takes its first proposer) makes a maximal matching, then Hopcroft-Karp phases augment it to a
    maximum one.  (scipy's ``maximum_bipartite_matching`` took 4 s on one 4000-pixel BSDS map.)
    """
    match_p = np.full(n_p, -1, dtype=np.int64)
    if len(pairs_p) == 0:
        return match_p >= 0
    d = dist if dist is not None else np.zeros(len(pairs_p))
    order = np.lexsort((d, pairs_p))
    pi, gj, d = pairs_p[order], pairs_g[order], d[order]
    match_g = np.full(n_g, -1, dtype=np.int64)
    while True:
        e = np.flatnonzero((match_p[pi] < 0) & (match_g[gj] < 0))
        if not len(e):
            break
        e = e[np.unique(pi[e], return_index=True)[1]]  # each free pixel's nearest free partner
        e = e[np.argsort(d[e], kind="stable")]
        e = e[np.unique(gj[e], return_index=True)[1]]  # each partner accepts its nearest proposal
        match_p[pi[e]], match_g[gj[e]] = gj[e], pi[e]
    starts = np.searchsorted(pi, np.arange(n_p + 1))
    adj = [gj[starts[u] : starts[u + 1]].tolist() for u in range(n_p)]
    mp, mg = match_p.tolist(), match_g.tolist()
    _hopcroft_karp(adj, mp, mg)
    return np.asarray(mp) >= 0


def _hopcroft_karp(adj: list[list[int]], mp: list[int], mg: list[int]) -> None:
    """Augment the matching ``mp`` (left -> right, -1 free) / ``mg`` (right -> left) in place to a
    maximum one: BFS layers from every free left vertex, then vertex-disjoint shortest augmenting
    paths by iterative DFS, until no augmenting path is left."""
    n = len(adj)
    while True:
        layer = [-1] * n
        queue = [u for u in range(n) if mp[u] < 0 and adj[u]]
        for u in queue:
            layer[u] = 0
        found, head = False, 0
        while head < len(queue):
            u = queue[head]
            head += 1
            for v in adj[u]:
                w = mg[v]
                if w < 0:
                    found = True
                elif layer[w] < 0:
                    layer[w] = layer[u] + 1
                    queue.append(w)
        if not found:
            return
        nxt = [0] * n
        for u0 in [u for u in range(n) if mp[u] < 0 and adj[u]]:
            _augment(u0, adj, layer, nxt, mp, mg)


def _augment(u0: int, adj: list[list[int]], layer: list[int], nxt: list[int], mp: list[int], mg: list[int]) -> bool:
    """One shortest augmenting path from free ``u0`` along the BFS layers (iterative DFS)."""
    stack, via = [u0], []  # via[i]: the right vertex leading from stack[i] to stack[i + 1]
    while stack:
        u = stack[-1]
        if nxt[u] < len(adj[u]):
            v = adj[u][nxt[u]]
            nxt[u] += 1
            w = mg[v]
            if w < 0:
                via.append(v)
                for a, b in zip(stack, via, strict=True):
                    mp[a], mg[b] = b, a
                return True
            if layer[w] == layer[u] + 1:
                via.append(v)
                stack.append(w)
        else:
            layer[u] = -1  # a dead end for the rest of this phase
            stack.pop()
            if via:
                via.pop()
    return False


def radius(shape: Sequence[int], tolerance: float) -> float:
    """The benchmark's matching distance in pixels: ``tolerance`` x the image diagonal."""
    return float(tolerance * np.hypot(shape[0], shape[1]))


def match_thresholds(edges: Sequence[np.ndarray] | np.ndarray, gts: np.ndarray, tolerance: float) -> np.ndarray:
    """Benchmark counts of one image over its thresholded edge maps: float64 ``4 x T``, rows
    ``count_r, sum_r, count_p, sum_p`` (as :func:`pixelwise.boundary_metrics.match_image`).

    ``edges``: T bool ``H x W`` thinned predicted edge maps (one per threshold); ``gts``: ``A x H x W``
    0/1 annotator maps.  Candidate pairs within the radius are found once per annotator for the
    union of the predicted pixels of all thresholds, then restricted to each threshold's pixels.
    """
    from scipy.spatial import cKDTree

    edges = np.asarray(edges, dtype=bool)
    t, h, w = edges.shape
    pts = np.argwhere(edges.any(0))  # U x 2: every pixel predicted at some threshold
    present = edges[:, pts[:, 0], pts[:, 1]]  # T x U: pixel u predicted at threshold k
    hit = np.zeros_like(present)  # T x U: matched to some annotator (precision)
    out = np.zeros((4, t))
    out[3] = present.sum(1)
    r = radius((h, w), tolerance)
    tree = cKDTree(pts) if len(pts) else None
    for gt in np.asarray(gts, dtype=bool):
        gpts = np.argwhere(gt)
        out[1] += len(gpts)
        if tree is None or not len(gpts):
            continue
        # every (pred, gt) pair within r: the benchmark's test d^2 <= r^2 (cKDTree keeps d <= r)
        pairs = tree.sparse_distance_matrix(cKDTree(gpts), r, output_type="ndarray")
        pi, gj, dd = pairs["i"].astype(np.int64), pairs["j"].astype(np.int64), pairs["v"]
        for k in range(t):
            rows = np.flatnonzero(present[k])
            keep = present[k, pi]
            local = np.full(len(pts), -1, dtype=np.int64)
            local[rows] = np.arange(len(rows))
            matched = _graph_matching(local[pi[keep]], gj[keep], len(rows), len(gpts), dd[keep])
            out[0, k] += matched.sum()  # a matching pairs as many gt pixels as predicted ones
            hit[k, rows[matched]] = True
    out[2] = hit.sum(1)
    return out
