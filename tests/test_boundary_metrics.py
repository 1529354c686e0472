"""The BSDS benchmark accumulator against hand-checkable cases and against pyEdgeEval's own summary."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("pyEdgeEval", reason="the boundary benchmark needs pyEdgeEval (pip install 'pixelwise[boundary]')")

from pixelwise.boundary_metrics import (
    BoundaryMetrics,
    area_pr,
    match_image,
    thresholds,
    to_uint8,
)

# The benchmark's matcher (pyEdgeEval's port of the official C++) adds random outlier edges to its
# graph from a generator seeded by the clock at load, exactly as the MATLAB benchmark does, so a
# count can differ by a pixel between runs: exact counts are compared with that slack.
SLACK = 2

N = 64  # image side: tolerance = 0.0075 * 64 * sqrt(2) = 0.68 px, so any 1-px shift is a miss


def lines(dy: int = 0, dx: int = 0) -> np.ndarray:
    """Two horizontal lines (44 px each) and a vertical one (13 px) that touch nothing: 101 pixels.

    Open one-pixel lines survive the benchmark's thinning unchanged (a closed outline would lose
    its corners), so a prediction equal to them is matched pixel for pixel."""
    m = np.zeros((N, N), np.uint8)
    m[20 + dy, 10 + dx : 54 + dx] = 1
    m[44 + dy, 10 + dx : 54 + dx] = 1
    m[26 + dy : 39 + dy, 32 + dx] = 1
    return m


def scores(pred: np.ndarray, gts: np.ndarray, n: int = 9, **kw) -> dict:
    m = BoundaryMetrics(n, **kw)
    m.add_image(pred.astype(np.float32), gts)
    return m.compute()


def test_thresholds_are_the_benchmarks() -> None:
    from pyEdgeEval.common.utils import check_thresholds

    assert np.array_equal(thresholds(99), check_thresholds(99))
    assert thresholds(4).tolist() == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert to_uint8(np.array([0.0, 0.5, 1.0, 1.7, -1])).tolist() == [0, 128, 255, 255, 0]


def test_perfect_prediction_scores_one() -> None:
    gt = lines()
    r = scores(gt, gt[None], apply_nms=False)
    assert r["ods_f"] == pytest.approx(1.0, abs=SLACK / 101) and r["ois_f"] == pytest.approx(1.0, abs=SLACK / 101)
    # with the benchmark's NMS (which smooths a binary map's line ends): still nearly perfect
    assert scores(gt, gt[None])["ods_f"] > 0.95


def test_one_line_of_three_by_hand() -> None:
    gt = lines()
    part = gt.copy()
    part[21:] = 0  # only the first horizontal line: 44 of 101 pixels
    r = scores(part, gt[None], apply_nms=False)
    assert r["ods_precision"] == pytest.approx(1.0, abs=SLACK / 44)
    assert r["ods_recall"] == pytest.approx(44 / 101, abs=SLACK / 101)
    assert r["ods_f"] == pytest.approx(2 * (44 / 101) / (1 + 44 / 101), abs=0.02)


def test_shift_beyond_the_tolerance_misses() -> None:
    gt = lines()
    assert scores(lines(dy=3, dx=3), gt[None])["ods_f"] == 0.0
    assert scores(np.zeros((N, N)), gt[None])["ods_f"] == 0.0
    # one pixel down is already beyond 0.68 px: only the 12 pixels where the vertical line overlaps
    # itself match (P = R = 12/101); at 0.0075 of a 16x larger diagonal everything is in tolerance
    assert scores(lines(dy=1), gt[None], apply_nms=False)["ods_f"] == pytest.approx(12 / 101, abs=SLACK / 101)
    far = scores(lines(dy=1), gt[None], apply_nms=False, tolerance=16 * 0.0075)
    assert far["ods_f"] == pytest.approx(1.0, abs=SLACK / 101)


def test_counts_per_annotator() -> None:
    """Recall sums over annotators; precision counts a pixel matched by any annotator."""
    gt = lines()
    other = np.zeros_like(gt)
    other[32, 5:26] = 1  # a second annotator: a 21-px line nowhere near the prediction
    c = match_image((gt * 255).astype(np.uint8), np.stack([gt, other]), 4, apply_nms=False)
    # thresholds 0.2..0.8: the binary prediction is the three lines at every threshold
    assert np.abs(c - np.array([[101], [101 + 21], [101], [101]])).max() <= SLACK


def test_batch_update_crops_padding_and_absent_annotators() -> None:
    gt = lines()
    pred = (0.7 * gt).astype(np.float32)
    one = BoundaryMetrics(5)
    one.add_image(pred, gt[None])
    # the same image padded by collate: 2 more rows/cols of 255, a second (absent) annotator
    target = np.full((1, 2, N + 2, N + 3), 255, np.uint8)
    target[0, 0, :N, :N] = gt
    big = np.zeros((1, N + 2, N + 3), np.float32)
    big[0, :N, :N] = pred
    big[0, N:, :] = 1.0  # garbage in the padding must not count
    batch = BoundaryMetrics(5)
    batch.update(torch.from_numpy(big), torch.from_numpy(target))
    assert np.abs(one.counts - batch.counts).max() <= SLACK
    assert batch.counts[1].tolist() == [101] * 5 and batch.counts[3].tolist() == one.counts[3].tolist()


def _images(n: int = 3, noise: float = 0.3) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        gts = np.stack([lines(dy=d) for d in (0, 1)])
        pred = np.clip((0.3 + 0.2 * i) * lines(dy=i % 2) + noise * rng.random((N, N)), 0, 1).astype(np.float32)
        out.append((pred, gts))
    return out


def test_merge_and_parallel_equal_one_pass() -> None:
    images = _images(noise=0.0)
    whole = BoundaryMetrics(7)
    for p, g in images:
        whole.add_image(p, g)
    a, b = BoundaryMetrics(7), BoundaryMetrics(7, workers=2)
    a.add_image(*images[0])
    for p, g in images[1:]:
        b.add_image(p, g)  # matched in two worker processes
    a.merge(b)
    assert a.images == 3 and np.abs(a.counts - whole.counts).max() <= SLACK * 3
    assert np.array_equal(a.counts[[1, 3]], whole.counts[[1, 3]])  # ground-truth and predicted pixels: exact
    assert a.compute()["ods_f"] == pytest.approx(whole.compute()["ods_f"], abs=0.01)
    with pytest.raises(ValueError, match="different thresholds"):
        a.merge(BoundaryMetrics(9))


def test_summary_agrees_with_pyedgeeval() -> None:
    """ODS, OIS and the PR area from the same per-image counts as the library's own summary."""
    from pyEdgeEval.common.binary_label import calculate_metrics

    images = _images()
    n = 9
    per_image = [tuple(match_image(to_uint8(p), g, n)) for p, g in images]
    ours = BoundaryMetrics(n)
    for c in per_image:
        ours._add_counts(np.stack(c))
    r = ours.compute()
    _, _, lib = calculate_metrics(
        eval_single=lambda s: per_image[s["i"]],
        thresholds=n,
        samples=[{"i": i, "name": str(i)} for i in range(len(images))],
        nproc=1,
    )
    assert r["ods_f"] == pytest.approx(lib["ODS_f1"], abs=2e-3)  # we interpolate at 100 points as MATLAB, it at 101
    assert r["ods_threshold"] == pytest.approx(lib["ODS_threshold"], abs=0.02)
    assert r["ois_f"] == pytest.approx(lib["OIS_f1"], abs=1e-9)
    assert r["ap"] == pytest.approx(lib["AUC"], abs=0.011)  # Area_PR: it omits the recall = 1 sample


def test_area_pr_by_hand() -> None:
    # precision 1 up to recall 0.5 -> half of the unit square
    assert area_pr(np.array([0.0, 0.5]), np.array([1.0, 1.0])) == pytest.approx(0.51)
    assert area_pr(np.array([0.3]), np.array([1.0])) == 0.0


def test_empty_accumulator_and_bad_shapes() -> None:
    m = BoundaryMetrics(5)
    r = m.compute()
    assert np.isnan(r["ods_f"]) and r["images"] == 0 and r["thresholds"] == 5
    with pytest.raises(ValueError, match="expected pred N x H x W"):
        m.update(torch.zeros(1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.uint8))


def _reduce_worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    m = BoundaryMetrics(3)
    for k in range(rank + 1):  # rank 0 adds one image, rank 1 two
        m._add_counts(np.array([[5.0 + k, 3, 1], [10, 10, 10], [4, 2, 1], [8, 4, 1]]) * (rank + 1))
    m.all_reduce()
    np.save(f"{out}/{rank}.npy", np.concatenate([m.counts.ravel(), m.best, [m.images]]))
    dist.destroy_process_group()


def test_all_reduce_sums_across_processes(tmp_path) -> None:
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_reduce_worker, args=(2, port, str(tmp_path)), nprocs=2)
    single = BoundaryMetrics(3)
    for rank in range(2):
        for k in range(rank + 1):
            single._add_counts(np.array([[5.0 + k, 3, 1], [10, 10, 10], [4, 2, 1], [8, 4, 1]]) * (rank + 1))
    want = np.concatenate([single.counts.ravel(), single.best, [single.images]])
    for rank in range(2):
        assert np.array_equal(np.load(tmp_path / f"{rank}.npy"), want)


def test_nms_from_many_threads_leaves_stdout_alone() -> None:
    """predict's writer renders edge maps on two threads: the library import's stdout redirect must
    not interleave (it once left a StringIO as sys.stdout and silenced the rest of the run)."""
    import sys
    from concurrent.futures import ThreadPoolExecutor

    pytest.importorskip("pyEdgeEval")
    from pixelwise.boundary_metrics import nms

    before = sys.stdout
    prob = (np.random.default_rng(0).random((24, 32)) * 255).astype(np.uint8)
    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(lambda _: nms(prob), range(64)))
    assert sys.stdout is before
    assert all(np.array_equal(o, outs[0]) for o in outs)
