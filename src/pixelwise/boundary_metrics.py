"""The BSDS boundary benchmark (Arbelaez et al., TPAMI 2011) on in-memory maps.

Per image, exactly as the benchmark (and HED, RCF) score a boundary-probability map:

1. quantise the probability to 8 bits (what ``predict`` writes, so scoring the saved PNGs gives the
   same numbers), then non-maximum suppression (Dollar's ``edgesNms``: r=1, s=5, m=1.01);
2. for each of T thresholds ``t_k = k / (T + 1)``: binarise ``>= t_k``, thin to one pixel
   (``bwmorph thin``), and match to **each** annotator with the benchmark's bipartite matcher at a
   tolerance of 0.0075 of the image diagonal.  Recall counts the matched ground-truth pixels over
   all annotators; precision counts predicted pixels matched to at least one annotator.

The NMS, thinning and matching are pyEdgeEval's ports of the benchmark's C++ (imported lazily: the
``boundary`` extra).  Over a split: **ODS** = best F of the summed counts with one threshold for
the split (interpolated between thresholds as ``collect_eval_bdry.m`` does), **OIS** = F of the
counts summed at each image's own best threshold, **AP** = area under the interpolated
precision-recall curve (the benchmark's ``Area_PR``).

The matcher adds random outlier edges to its graph from a generator the C++ seeds from the clock
when the library loads (as the official benchmark does), so a count can differ by a pixel between
runs and scores in the fourth decimal.  Matching dominates the cost (a fraction of a second per threshold per annotator), so
:class:`BoundaryMetrics` can farm images out to worker processes while the network runs on the next
batch (measured under load on 2 cores: 0.52 s per match, 257 s per BSDS val image at 99 thresholds
in-process, 1.83x faster with 2 workers; ``benchmarks/boundary_eval.py``); its state is a few sums, so accumulators merge and all-reduce exactly.
"""

from __future__ import annotations

import contextlib
import io
import math
import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import numpy as np

TOLERANCE = 0.0075  #: matching distance as a fraction of the image diagonal
STANDARD_THRESHOLDS = 99  #: the benchmark's number of thresholds
ABSENT = 255  #: target value of a padded pixel / a missing annotator
# NMS parameters of the benchmark's edgesNms as HED and RCF call it
NMS_KW = {"r": 1, "s": 5, "m": 1.01, "half_prec": False}


def thresholds(n: int) -> np.ndarray:
    """The benchmark's ``n`` thresholds ``linspace(1/(n+1), 1 - 1/(n+1), n)`` (float64)."""
    if n < 1:
        raise ValueError(f"the number of thresholds must be >= 1, got {n}")
    return np.linspace(1.0 / (n + 1), 1.0 - 1.0 / (n + 1), n)


_LIBRARY_LOCK = threading.Lock()
_LIBRARY: Any = None  # the imported module, once (every NMS call asks for it)


def _library() -> Any:
    """pyEdgeEval's evaluation module (it prints a warning about optional .mat readers on import).

    Imported once, under a lock: ``redirect_stdout`` swaps the process-wide ``sys.stdout``, so two
    threads inside it at once (predict's writer pool rendering two edge maps) could leave a
    StringIO behind as ``sys.stdout`` and silence the rest of the run."""
    global _LIBRARY
    with _LIBRARY_LOCK:
        if _LIBRARY is None:
            _LIBRARY = _import_library()
        return _LIBRARY


def _import_library() -> Any:
    import warnings

    try:  # it also imports a deprecated scipy namespace
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from pyEdgeEval.common.binary_label import evaluate_boundaries
    except ImportError as e:
        from .errors import PixelwiseError

        raise PixelwiseError(
            f"the boundary benchmark needs pyEdgeEval and OpenCV ({e}): pip install 'pixelwise[boundary]'"
        ) from None
    return evaluate_boundaries


def to_uint8(prob: np.ndarray) -> np.ndarray:
    """Probability ``H x W`` in [0, 1] -> uint8 (round half up, clipped): the saved PNG's values."""
    return np.floor(np.clip(np.asarray(prob, dtype=np.float64), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def nms(prob8: np.ndarray) -> np.ndarray:
    """Non-maximum suppression of an 8-bit probability map -> float64 ``H x W`` thin edge strengths."""
    lib = _library()
    return lib.fast_nms(np.ascontiguousarray(prob8, dtype=np.uint8), **NMS_KW)


MATCHERS = ("bsds", "fast")  #: the benchmark's CSA matcher; maximum matching (boundary_matching.py)


def match_image(
    prob8: np.ndarray,
    gts: np.ndarray,
    n_thresholds: int = STANDARD_THRESHOLDS,
    *,
    apply_nms: bool = True,
    tolerance: float = TOLERANCE,
    matcher: str = "bsds",
) -> np.ndarray:
    """Benchmark counts of one image: float64 ``4 x T`` rows ``count_r, sum_r, count_p, sum_p``.

    ``prob8``: uint8 ``H x W`` boundary probability (x 255); ``gts``: ``A x H x W`` 0/1 maps, one
    per annotator.  Recall at threshold k is ``count_r / sum_r``, precision ``count_p / sum_p``.
    ``matcher``: ``bsds`` the benchmark's (reported figures), ``fast`` the maximum matching of
    :mod:`pixelwise.boundary_matching` (model selection; same NMS and thinning).
    """
    if matcher not in MATCHERS:
        from .errors import PixelwiseError

        raise PixelwiseError(f"unknown boundary matcher '{matcher}': valid {', '.join(MATCHERS)}")
    lib = _library()
    edges = lib.fast_nms(np.ascontiguousarray(prob8, dtype=np.uint8), **NMS_KW) if apply_nms else prob8 / 255.0
    ts = thresholds(n_thresholds)
    if matcher == "fast":
        from pyEdgeEval.preprocess import binary_thin

        from .boundary_matching import match_thresholds

        return match_thresholds([binary_thin(edges >= t) for t in ts], gts, tolerance)
    out = lib.evaluate_boundaries_threshold_multiple_gts(
        thresholds=ts,
        pred=edges,
        gts=[np.asarray(g, dtype=bool) for g in gts],
        max_dist=tolerance,
        apply_thinning=True,
        apply_nms=False,
    )
    return np.stack([np.asarray(v, dtype=np.float64) for v in out])


def _prf(c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Recall, precision, F from counts ``4 x ...`` (the benchmark's zero conventions)."""
    r = c[0] / np.where(c[1] == 0, 1, c[1])
    p = c[2] / np.where(c[3] == 0, 1, c[3])
    f = 2 * p * r / np.where(p + r == 0, 1, p + r)
    return r, p, f


def ods(ts: np.ndarray, r: np.ndarray, p: np.ndarray) -> tuple[float, float, float, float]:
    """Best (threshold, recall, precision, F) along the PR curve, linearly interpolated at 100
    points between neighbouring thresholds (``collect_eval_bdry.m``'s ``maxF``)."""
    best = (float(ts[0]), float(r[0]), float(p[0]), float(_f(p[0], r[0])))
    d = np.linspace(0, 1, 100)[None, :]
    t_i = ts[1:, None] * d + ts[:-1, None] * (1 - d)
    r_i = r[1:, None] * d + r[:-1, None] * (1 - d)
    p_i = p[1:, None] * d + p[:-1, None] * (1 - d)
    f_i = _f(p_i, r_i)
    if f_i.size and f_i.max() > best[3]:
        k = np.unravel_index(np.argmax(f_i), f_i.shape)
        best = (float(t_i[k]), float(r_i[k]), float(p_i[k]), float(f_i[k]))
    return best


def _f(p: Any, r: Any) -> Any:
    return 2 * p * r / np.where(p + r == 0, 1, p + r)


def area_pr(r: np.ndarray, p: np.ndarray) -> float:
    """Area under the PR curve, precision interpolated at recall 0, 0.01, ..., 1 (0 outside the
    measured recall range): the benchmark's ``Area_PR``, reported as AP."""
    ru, idx = np.unique(r, return_index=True)
    if len(ru) < 2:
        return 0.0
    return float(np.interp(np.linspace(0, 1, 101), ru, p[idx], left=0.0, right=0.0).sum() * 0.01)


def _pool(workers: int) -> ProcessPoolExecutor:
    # forkserver/spawn, never fork: the parent holds torch's thread pools, which a fork can deadlock
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)


def default_workers() -> int:
    """Processes for the matching: every core the process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class BoundaryMetrics:
    """Mergeable accumulator of the BSDS benchmark over a split.

    State: per-threshold counts summed over images (``4 x T``, float64), the counts at each image's
    best threshold summed (``4``, for OIS) and the image count -- all sums, so :meth:`merge` and
    :meth:`all_reduce` give exactly the single-process numbers.  ``workers`` > 0 matches images in
    that many processes, overlapping with whatever the caller does next; 0 matches in-process.
    """

    def __init__(
        self,
        n_thresholds: int = STANDARD_THRESHOLDS,
        *,
        workers: int = 0,
        apply_nms: bool = True,
        tolerance: float = TOLERANCE,
        matcher: str = "bsds",
    ) -> None:
        if matcher not in MATCHERS:
            from .errors import PixelwiseError

            raise PixelwiseError(f"unknown boundary matcher '{matcher}': valid {', '.join(MATCHERS)}")
        self.thresholds = thresholds(n_thresholds)
        self.workers, self.apply_nms, self.tolerance = int(workers), apply_nms, tolerance
        self.matcher = matcher
        self.counts = np.zeros((4, len(self.thresholds)))
        self.best = np.zeros(4)
        self.images = 0
        self.pixels = 0  # scored pixels (image areas), for the eval table
        self._pending: list[Future] = []
        self._executor: ProcessPoolExecutor | None = None

    @property
    def n_thresholds(self) -> int:
        return len(self.thresholds)

    # -- accumulating ---------------------------------------------------------------------------
    def update(self, pred: Any, target: Any) -> None:
        """Add a batch: ``pred`` probabilities ``N x H x W`` in [0, 1]; ``target`` uint8
        ``N x A x H x W`` per-annotator 0/1 maps, 255 for padding and absent annotators.

        Each image is cropped to its own size (the pixels some annotator labels: batches are padded
        bottom/right) and scored against its own annotators only.
        """
        pred = _numpy(pred, np.float32)
        target = _numpy(target, np.uint8)
        if pred.ndim != 3 or target.ndim != 4 or pred.shape[0] != target.shape[0] or pred.shape[1:] != target.shape[2:]:
            raise ValueError(f"expected pred N x H x W and target N x A x H x W, got {pred.shape} and {target.shape}")
        for p, t in zip(pred, target, strict=True):
            self.add_image(p, t)

    def add_image(self, prob: np.ndarray, gts: np.ndarray) -> None:
        """One image: ``prob`` ``H x W`` float in [0, 1]; ``gts`` ``A x H x W`` (255 = absent)."""
        present = (gts != ABSENT).any(axis=(1, 2))
        gts = gts[present]
        if not len(gts):
            return  # nothing annotated (an all-padding slot)
        rows = np.flatnonzero((gts != ABSENT).any(axis=(0, 2)))
        cols = np.flatnonzero((gts != ABSENT).any(axis=(0, 1)))
        h, w = rows[-1] + 1, cols[-1] + 1
        prob8 = to_uint8(prob[:h, :w])
        self.pixels += int(h * w)
        gts = (gts[:, :h, :w] == 1).astype(np.uint8)
        args = (prob8, gts, self.n_thresholds)
        kw = {"apply_nms": self.apply_nms, "tolerance": self.tolerance, "matcher": self.matcher}
        if self.workers > 0:
            if self._executor is None:
                self._executor = _pool(self.workers)
            self._pending.append(self._executor.submit(match_image, *args, **kw))
        else:
            self._add_counts(match_image(*args, **kw))

    def _add_counts(self, c: np.ndarray) -> None:
        self.counts += c
        f = _prf(c)[2]
        self.best += c[:, int(np.flatnonzero(f == f.max())[-1])]  # the last best, as collect_eval_bdry.m
        self.images += 1

    def wait(self) -> None:
        """Collect every image still being matched (called by merge/all_reduce/compute)."""
        pending, self._pending = self._pending, []
        for fut in pending:
            self._add_counts(fut.result())
        self.close()

    def close(self) -> None:
        """Stop the worker processes (they restart on the next ``update``)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def merge(self, other: BoundaryMetrics) -> BoundaryMetrics:
        if not np.array_equal(other.thresholds, self.thresholds):
            raise ValueError("cannot merge boundary metrics over different thresholds")
        self.wait()
        other.wait()
        self.counts += other.counts
        self.best += other.best
        self.images += other.images
        self.pixels += other.pixels
        return self

    def all_reduce(self) -> None:
        """Sum the state over all processes of the default torch.distributed group."""
        self.wait()
        import torch
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            flat = torch.from_numpy(np.concatenate([self.counts.ravel(), self.best, [self.images, self.pixels]]))
            dist.all_reduce(flat)
            v = flat.numpy()
            n = self.counts.size
            self.counts, self.best = v[:n].reshape(self.counts.shape), v[n : n + 4]
            self.images, self.pixels = round(v[-2]), round(v[-1])

    def reset(self) -> None:
        self.wait()
        self.counts[:] = 0
        self.best[:] = 0
        self.images = self.pixels = 0

    # -- results --------------------------------------------------------------------------------
    def compute(self) -> dict:
        """``ods_f``, ``ods_threshold``, ``ois_f``, ``ap`` (+ ODS/OIS recall and precision, the
        number of thresholds and images); NaN before any image."""
        self.wait()
        out: dict[str, Any] = {
            "thresholds": self.n_thresholds,
            "matcher": self.matcher,
            "images": self.images,
            "valid_pixels": self.pixels,
        }
        if not self.images:
            nan = math.nan
            return {"ods_f": nan, "ois_f": nan, "ap": nan, "ods_threshold": nan, **out}
        r, p, _ = _prf(self.counts)
        t, odr, odp, odf = ods(self.thresholds, r, p)
        oir, oip, oif = (float(v) for v in _prf(self.best))
        return {
            "ods_f": odf,
            "ois_f": oif,
            "ap": area_pr(r, p),
            "ods_threshold": t,
            "ods_recall": odr,
            "ods_precision": odp,
            "ois_recall": oir,
            "ois_precision": oip,
            "pr_curve": {"threshold": self.thresholds.tolist(), "recall": r.tolist(), "precision": p.tolist()},
            **out,
        }

    def __del__(self) -> None:  # pragma: no cover - interpreter shutdown
        with contextlib.suppress(Exception):
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)


def _numpy(x: Any, dtype: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy() if dtype == np.float32 else x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)
