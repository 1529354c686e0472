"""HHA encoding of depth (Gupta, Girshick, Arbelaez, Malik, ECCV 2014), vectorised with NumPy.

Three uint8 channels per pixel, in the order and scale of the reference code (``saveHHA``), which
the FCN paper's NYUDv2 HHA inputs (and their mean ``132.431, 94.076, 118.477`` BGR) come from:

1. **horizontal disparity** ``310 / max(Z, 1 m)`` (Z in metres; the reference's ``31000 / Z_cm``
   with depth clamped at 100 cm, so everything nearer than 1.22 m saturates at 255);
2. **height above ground** in centimetres: the height along the estimated gravity direction,
   measured from the lowest point of the frame (if no point is 0.9 m or more below the camera the
   floor is assumed 1.3 m below it, as the reference does); saturates at 2.55 m;
3. **angle** between the local surface normal and gravity, in degrees, plus 38 (``128 - 90``: a
   floor (normal along gravity, 0 deg) reads 38, a wall (90 deg) 128, a ceiling (180 deg) 218).

Conventions: camera coordinates x right, y down, z forward (pixel ``(row r, col c)`` back-projects
to ``((c - cx) Z / fx, (r - cy) Z / fy, Z)``, 0-based pixel centres); normals point away from the
camera (``n . p > 0``) and gravity ``g`` points down, so a floor's normal is parallel to ``g``.
Gravity is *estimated* (not assumed from an upright camera) by the paper's procedure: start from the
camera's y axis, then repeatedly take the normals nearly parallel to the estimate (floors, ceilings,
table tops) and those nearly perpendicular (walls), and choose the direction most aligned with the
first set and most orthogonal to the second -- the eigenvector of the smallest eigenvalue of
``W^T W - F^T F`` (scatter matrices of the wall and floor sets) -- with the angle threshold shrinking
from 45 to 15 degrees.  Depth <= 0 or non-finite is "no reading": all three channels are 0 there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import PixelwiseError

#: (fx, fy, cx, cy) in pixels of the Kinect colour camera the NYUDv2 frames were registered to
#: (NYU toolbox calibration; cx, cy converted from MATLAB's 1-based to 0-based pixel centres).
NYUD_FX, NYUD_FY, NYUD_CX, NYUD_CY = 518.857901, 519.469611, 325.582449 - 1, 253.736166 - 1

#: the reference's parameters: normal windows of radius 3 (angle channel) and 10 (gravity), angle
#: thresholds 45 then 15 degrees with 5 iterations each
NORMAL_RADIUS, GRAVITY_RADIUS = 3, 10
#: the shared NYUDv2 copy's depth is quantised to 39 mm steps, which radius-3 normals turn into
#: stripes (median floor-normal error 22 deg on 20 train frames, 13 deg at radius 7): wider windows
NYUD_NORMAL_RADIUS = 7
GRAVITY_SCHEDULE = ((45.0, 5), (15.0, 5))


def intrinsics(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """The 3 x 3 pinhole matrix ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` (pixels)."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def nyud_intrinsics(*, mirrored: bool = True) -> np.ndarray:
    """NYUDv2's colour-camera matrix for 640 x 480 frames; ``mirrored``: left-right mirrored frames (cx -> 639 - cx).

    The shared copy's frames are mirrored relative to the original archive (text in them reads
    backwards, e.g. the "THINK COFFEE" sign of img_5122), hence the default.
    """
    cx = 639 - NYUD_CX if mirrored else NYUD_CX
    return intrinsics(NYUD_FX, NYUD_FY, cx, NYUD_CY)


def _check(depth: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float64 depth (``H x W`` metres) and the mask of valid readings; one-line errors otherwise."""
    depth = np.asarray(depth)
    if depth.ndim != 2 or min(depth.shape) < 2 or not np.issubdtype(depth.dtype, np.number):
        raise PixelwiseError(f"depth must be a numeric H x W array of metres (H, W >= 2), got shape {depth.shape}")
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise PixelwiseError(f"camera matrix must be 3 x 3 with positive fx, fy, got {K.tolist()}")
    depth = depth.astype(np.float64)
    valid = np.isfinite(depth) & (depth > 0)
    if valid.sum() < 3:
        raise PixelwiseError("depth has fewer than 3 valid readings (all zero / NaN?): no geometry to encode")
    return np.where(valid, depth, 0.0), valid


def back_project(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Depth ``H x W`` (metres) and ``K`` -> points ``H x W x 3`` (metres, camera frame, x right, y down)."""
    h, w = depth.shape
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    cols = (np.arange(w) - cx) / fx
    rows = (np.arange(h) - cy) / fy
    return np.stack([depth * cols[None, :], depth * rows[:, None], depth], axis=-1)


def _box_sums(channels: np.ndarray, radius: int) -> np.ndarray:
    """Sums over the ``(2r+1)^2`` window around every pixel of ``C x H x W`` (zeros beyond the border)."""
    c, h, w = channels.shape
    k = 2 * radius + 1
    # integral image with one row/column of zeros in front, padded so every window is in range
    pad = np.zeros((c, h + k, w + k))
    pad[:, radius + 1 : radius + 1 + h, radius + 1 : radius + 1 + w] = channels
    ii = pad.cumsum(1).cumsum(2)
    return ii[:, k:, k:] - ii[:, :-k, k:] - ii[:, k:, :-k] + ii[:, :-k, :-k]


def surface_normals(depth: np.ndarray, K: np.ndarray, radius: int = NORMAL_RADIUS) -> np.ndarray:
    """Unit normals ``H x W x 3`` (camera frame, pointing away from the camera; NaN where undefined).

    Each pixel's normal comes from a least-squares plane through the valid points of its
    ``(2r+1)^2`` window.  A plane ``n . p = 1`` divided by depth reads ``n . (u, v, 1) = 1 / Z`` in
    normalised image coordinates ``u = (c - cx) / fx``, ``v = (r - cy) / fy``: inverse depth is
    affine in the image, so the fit is linear and all its moments are box filters (9 of them), and
    the 3 x 3 normal equations are solved in closed form (adjugate) at every pixel at once.  ``n``
    points from the camera to the plane, i.e. away from the camera, like the reference's normals.
    """
    depth, valid = _check(depth, K)
    h, w = depth.shape
    u = np.broadcast_to((np.arange(w) - K[0, 2]) / K[0, 0], (h, w))
    v = np.broadcast_to(((np.arange(h) - K[1, 2]) / K[1, 1])[:, None], (h, w))
    one = valid.astype(np.float64)
    inv = np.divide(1.0, depth, out=np.zeros_like(depth), where=valid)
    u, v = u * one, v * one  # invalid pixels contribute nothing to any moment
    suu, suv, su, svv, sv, s1, suw, svw, sw = _box_sums(
        np.stack([u * u, u * v, u, v * v, v, one, u * inv, v * inv, inv]), radius
    )
    # adjugate of the symmetric [[suu, suv, su], [suv, svv, sv], [su, sv, s1]]: n ~ adj @ rhs
    a11, a12, a13 = svv * s1 - sv * sv, su * sv - suv * s1, suv * sv - su * svv
    a22, a23, a33 = suu * s1 - su * su, su * suv - suu * sv, suu * svv - suv * suv
    det = suu * a11 + suv * a12 + su * a13
    n = np.stack(
        [a11 * suw + a12 * svw + a13 * sw, a12 * suw + a22 * svw + a23 * sw, a13 * suw + a23 * svw + a33 * sw], -1
    )
    norm = np.linalg.norm(n, axis=-1)
    # det of a Gram matrix is >= 0; a (near) zero one means the window's points are collinear
    ok = valid & (s1 >= 3) & (det > 1e-12 * np.maximum(suu * svv * s1, 1e-300)) & (norm > 0)
    n = n / np.where(ok, norm, 1.0)[..., None]
    n[~ok] = np.nan
    return n


def estimate_gravity(
    normals: np.ndarray,
    schedule: tuple[tuple[float, int], ...] = GRAVITY_SCHEDULE,
    start: tuple[float, float, float] = (0.0, 1.0, 0.0),
) -> np.ndarray:
    """The unit gravity direction (3,) in the camera frame (pointing down) from ``H x W x 3`` normals.

    ``schedule`` is ``(threshold in degrees, iterations)`` pairs: each iteration collects the
    normals within the threshold of the current estimate (up to sign: floor-like, set F) and those
    within it of perpendicular (wall-like, set W), and moves to the eigenvector of
    ``W^T W - F^T F`` with the smallest eigenvalue -- the direction maximising the floor set's
    alignment minus the wall set's -- with the sign kept towards the previous estimate.
    """
    nn = normals.reshape(-1, 3)
    nn = nn[np.isfinite(nn).all(1)]
    g = np.asarray(start, dtype=np.float64)
    g = g / np.linalg.norm(g)
    for threshold, iterations in schedule:
        cos_t, sin_t = np.cos(np.radians(threshold)), np.sin(np.radians(threshold))
        for _ in range(iterations):
            sim = np.abs(nn @ g)
            floor, wall = nn[sim > cos_t], nn[sim < sin_t]
            if len(floor) + len(wall) == 0:  # nothing to align with: keep the estimate
                break
            _, vecs = np.linalg.eigh(wall.T @ wall - floor.T @ floor)  # eigenvalues ascending
            new = vecs[:, 0]
            g = new if new @ g >= 0 else -new
    return g


def height_above_ground(points: np.ndarray, valid: np.ndarray, gravity: np.ndarray) -> np.ndarray:
    """Height ``H x W`` (metres) along ``-gravity`` above the frame's lowest point (or 1.3 m below the camera).

    The reference's rule: heights are measured from the lowest valid point, unless that point is
    less than 0.9 m below the camera (no floor in view), when the floor is taken 1.3 m below it.
    """
    up = -(points @ gravity)
    lowest = up[valid].min()
    if lowest > -0.9:
        lowest = -1.3
    return up - lowest


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """MATLAB's ``uint8()``: round to nearest, saturate to 0..255, NaN -> 0."""
    return np.clip(np.rint(np.nan_to_num(x, nan=0.0)), 0, 255).astype(np.uint8)


def hha_encode(
    depth: np.ndarray,
    K: np.ndarray,
    *,
    normal_radius: int = NORMAL_RADIUS,
    gravity_radius: int = GRAVITY_RADIUS,
    return_gravity: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """HHA image ``H x W x 3`` uint8 (disparity, height, angle) from depth ``H x W`` (metres) and ``K`` (3 x 3).

    Normals for the angle channel use windows of radius ``normal_radius``; gravity is estimated
    from smoother normals (``gravity_radius``).  With ``return_gravity`` also returns the estimated
    gravity direction (3,), unit, camera frame, pointing down.  Invalid depth (<= 0, NaN, inf)
    encodes as 0 in every channel; bad shapes or a depth map without readings raise
    :class:`PixelwiseError`.
    """
    depth, valid = _check(depth, K)
    K = np.asarray(K, dtype=np.float64)
    # the wide-window normals are smooth: every other row and column estimates gravity as well, 4x faster
    gravity = estimate_gravity(surface_normals(depth, K, gravity_radius)[::2, ::2])
    normals = surface_normals(depth, K, normal_radius)
    points = back_project(depth, K)
    disparity = 310.0 / np.maximum(depth, 1.0)
    height_cm = 100.0 * height_above_ground(points, valid, gravity)
    angle = np.degrees(np.arccos(np.clip(normals @ gravity, -1.0, 1.0))) + (128.0 - 90.0)
    hha = _to_uint8(np.stack([disparity, height_cm, angle], -1))
    hha[~valid] = 0
    return (hha, gravity) if return_gravity else hha


def scaled_intrinsics(K: np.ndarray, size: tuple[int, int], calibrated: tuple[int, int] = (480, 640)) -> np.ndarray:
    """``K`` calibrated for ``calibrated`` (H, W) frames rescaled to frames of ``size`` (H, W) pixels."""
    sy, sx = size[0] / calibrated[0], size[1] / calibrated[1]
    fx, fy, cx, cy = K[0, 0] * sx, K[1, 1] * sy, (K[0, 2] + 0.5) * sx - 0.5, (K[1, 2] + 0.5) * sy - 0.5
    return intrinsics(fx, fy, cx, cy)


def hha_from_png(path: Path, K: np.ndarray | None = None, *, normal_radius: int = NYUD_NORMAL_RADIUS) -> np.ndarray:
    """HHA ``H x W x 3`` uint8 of one uint16 millimetre depth PNG: what ``data hha`` writes for a
    frame and ``predict --depth`` feeds a model.  ``K`` defaults to :func:`nyud_intrinsics` (mirrored
    frames) rescaled to the frame's size; errors name the file."""
    from .nyud import read_depth_metres

    try:
        return hha_from_metres(read_depth_metres(path).numpy(), K, normal_radius=normal_radius)
    except PixelwiseError as e:  # name the file the bad depth came from
        raise PixelwiseError(f"{path}: {e}") from None


def hha_from_metres(
    depth: np.ndarray, K: np.ndarray | None = None, *, normal_radius: int = NYUD_NORMAL_RADIUS
) -> np.ndarray:
    """HHA ``H x W x 3`` uint8 of one ``H x W`` float32 depth map in metres (0: no reading), ``K``
    defaulting as in :func:`hha_from_png` -- the one place that default is applied (``data hha``,
    ``predict --depth`` and ``serve`` uploads all come through here)."""
    frame_K = K if K is not None else scaled_intrinsics(nyud_intrinsics(), depth.shape)
    return hha_encode(depth, frame_K, normal_radius=normal_radius)


def parse_intrinsics(text: str | None, what: str = "--intrinsics") -> np.ndarray | None:
    """``"fx,fy,cx,cy"`` (pixels) -> 3 x 3 matrix; None for None (the dataset's default)."""
    if text is None:
        return None
    try:
        fx, fy, cx, cy = (float(v) for v in text.split(","))
    except ValueError:
        raise PixelwiseError(f"{what} must be four numbers FX,FY,CX,CY, got '{text}'") from None
    return intrinsics(fx, fy, cx, cy)


def write_nyud_hha(
    root: str | Path,
    out: str | Path,
    *,
    splits: Sequence[str] | None = None,
    K: np.ndarray | None = None,
    normal_radius: int = NYUD_NORMAL_RADIUS,
    progress: Callable[[int, int, str], None] | None = None,
) -> int:
    """Encode every depth map of NYUDv2 ``splits`` (default: every split file present) to ``out/data/hha/img_N.png``.

    ``root`` is the dataset in the FCN archive layout (``data/depth/img_N.png``, uint16 mm; the
    shared copy is read-only, hence a separate ``out``).  ``K`` defaults to
    :func:`nyud_intrinsics` (mirrored frames) rescaled to each frame's size.  Each PNG is written
    atomically; ``progress(done, total, stem)`` is called after each.  Returns the number written.
    """
    from PIL import Image

    from ..atomic import atomic_path
    from .fileio import read_split, require
    from .nyud import SPLITS

    root = require(Path(root), "NYUDv2 root folder")
    names = splits or [s for s in SPLITS if (root / f"{s}.txt").is_file()]
    if not names:
        raise PixelwiseError(f"no split files ({', '.join(f'{s}.txt' for s in SPLITS)}) in {root}")
    ids = list(dict.fromkeys(n for s in names for n in read_split(require(root / f"{s}.txt", f"NYUDv2 {s} split"))))
    for done, n in enumerate(ids, 1):
        stem = n if n.startswith("img_") else f"img_{n}"
        hha = hha_from_png(root / "data" / "depth" / f"{stem}.png", K, normal_radius=normal_radius)
        with atomic_path(Path(out) / "data" / "hha" / f"{stem}.png") as tmp:
            Image.fromarray(hha).save(tmp, format="PNG")
        if progress:
            progress(done, len(ids), stem)
    return len(ids)
