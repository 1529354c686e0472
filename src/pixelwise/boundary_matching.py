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
annotator's matched pixels count towards recall.  The counts can differ from the benchmark's by
the few pixels its random outlier graph leaves unmatched; report figures with the benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _graph_matching(pairs_p: np.ndarray, pairs_g: np.ndarray, n_p: int, n_g: int) -> np.ndarray:
    """Maximum matching of the bipartite graph with edges ``(pairs_p[k], pairs_g[k])`` ->
    bool ``n_p``: which predicted pixels are matched (the matching's size is their count)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_bipartite_matching

    if n_p == 0 or n_g == 0 or len(pairs_p) == 0:
        return np.zeros(n_p, dtype=bool)
    graph = csr_matrix((np.ones(len(pairs_p), dtype=np.int8), (pairs_p, pairs_g)), shape=(n_p, n_g))
    return maximum_bipartite_matching(graph, perm_type="column") >= 0


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
        pi, gj = pairs["i"].astype(np.int64), pairs["j"].astype(np.int64)
        for k in range(t):
            rows = np.flatnonzero(present[k])
            keep = present[k, pi]
            local = np.full(len(pts), -1, dtype=np.int64)
            local[rows] = np.arange(len(rows))
            matched = _graph_matching(local[pi[keep]], gj[keep], len(rows), len(gpts))
            out[0, k] += matched.sum()  # a matching pairs as many gt pixels as predicted ones
            hit[k, rows[matched]] = True
    out[2] = hit.sum(1)
    return out
