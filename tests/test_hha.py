"""HHA encoding: hand-checked geometry on depth rendered from a known, tilted camera (a floor and a
wall), bad input, and ``pixelwise data hha`` on a fixture in the NYUDv2 archive layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_formats import labels, rgb, save_mat, save_rgb, write_split
from PIL import Image
from scipy.ndimage import binary_erosion

from pixelwise.cli import main
from pixelwise.data import get_dataset
from pixelwise.data.hha import (
    estimate_gravity,
    hha_encode,
    intrinsics,
    nyud_intrinsics,
    scaled_intrinsics,
    surface_normals,
)
from pixelwise.errors import PixelwiseError

H, W = 120, 160
K = scaled_intrinsics(nyud_intrinsics(), (H, W))  # fx ~ 130 px: a Kinect's field of view, small frame


def camera_to_world(pitch_deg: float, roll_deg: float) -> np.ndarray:
    """Rotation taking camera coordinates (x right, y down, z forward) to a world with y down (gravity)."""
    p, r = np.radians(pitch_deg), np.radians(roll_deg)
    pitch = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    roll = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return roll @ pitch


def render(R: np.ndarray, cam_height: float, wall_dist: float = 4.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Depth (m) of a floor ``cam_height`` below the camera and a wall ``wall_dist`` ahead (world axes),
    the floor mask, and every pixel's world height above the floor (m)."""
    c, r = np.meshgrid(np.arange(W), np.arange(H))
    rays = np.stack([(c - K[0, 2]) / K[0, 0], (r - K[1, 2]) / K[1, 1], np.ones((H, W))], -1)  # z = 1: t is Z
    world = rays @ R.T
    with np.errstate(divide="ignore"):
        t_floor = np.where(world[..., 1] > 0, cam_height / world[..., 1], np.inf)
        t_wall = np.where(world[..., 2] > 0, wall_dist / world[..., 2], np.inf)
    depth = np.minimum(t_floor, t_wall)
    height = cam_height - depth * world[..., 1]
    return depth, t_floor < t_wall, height


@pytest.fixture(scope="module")
def tilted() -> dict:
    """Camera pitched 15 deg down and rolled 5 deg, 1.5 m above the floor."""
    R = camera_to_world(-15, 5)
    depth, floor, height = render(R, 1.5)
    hha, gravity = hha_encode(depth, K, return_gravity=True)
    return {"R": R, "depth": depth, "floor": floor, "height": height, "hha": hha, "gravity": gravity}


def test_gravity_is_estimated_from_the_normals_not_assumed(tilted) -> None:
    truth = tilted["R"].T @ np.array([0.0, 1.0, 0.0])  # world down, in camera coordinates
    assert np.degrees(np.arccos(truth[1])) > 15  # far from the camera's own y axis (an upright camera)
    g = tilted["gravity"]
    assert g.shape == (3,) and np.isclose(np.linalg.norm(g), 1.0)
    assert np.degrees(np.arccos(np.clip(g @ truth, -1, 1))) < 1.0
    assert 0.2 < tilted["floor"].mean() < 0.8  # both planes fill a good part of the frame


def test_floor_and_wall_heights(tilted) -> None:
    hha, floor = tilted["hha"], tilted["floor"]
    # the floor is the lowest point: height 0 all over it (within the 1 cm that a gravity estimate a
    # few hundredths of a degree off makes over 4 m)
    assert hha[..., 1][floor].max() <= 1
    expected = np.clip(np.rint(100 * tilted["height"]), 0, 255)  # centimetres above the floor, saturating
    wall = hha[..., 1][~floor].astype(int)
    assert np.abs(wall - expected[~floor]).max() <= 2
    assert wall.max() > 200 and wall.min() <= 2  # from the floor line up to 2.45 m
    cols = hha[..., 1][:, W // 2][~floor[:, W // 2]].astype(int)
    assert np.all(np.diff(cols) <= 0)  # up the image = higher on the wall (rows run down)


def test_height_when_no_floor_is_in_view() -> None:
    # the lowest point (this floor) is only 0.6 m below the camera: the reference then takes the
    # floor 1.3 m below the camera, so the plane reads 130 - 60 = 70 cm (within the 3 cm that a
    # gravity estimate 0.35 deg off -- this small frame's floor/wall seam is wide -- makes over 4 m)
    depth, floor, _ = render(camera_to_world(-15, 5), 0.6)
    hha = hha_encode(depth, K)
    assert np.all(np.abs(hha[..., 1][floor].astype(int) - 70) <= 3)


def test_angle_channel_reads_floor_0_and_wall_90_degrees(tilted) -> None:
    hha, floor = tilted["hha"], tilted["floor"]
    # pixels whose 7 x 7 normal window lies on one plane (radius 3, the default)
    inner_floor = binary_erosion(floor, np.ones((7, 7)), border_value=1)
    inner_wall = binary_erosion(~floor, np.ones((7, 7)), border_value=1)
    assert inner_floor.sum() > 1000 and inner_wall.sum() > 1000
    assert np.all(np.abs(hha[..., 2][inner_floor].astype(int) - 38) <= 1)  # 0 deg + 38
    assert np.all(np.abs(hha[..., 2][inner_wall].astype(int) - 128) <= 1)  # 90 deg + 38


def test_disparity_channel(tilted) -> None:
    expected = np.clip(np.rint(310 / np.maximum(tilted["depth"], 1.0)), 0, 255)
    assert np.abs(tilted["hha"][..., 0].astype(int) - expected).max() <= 1
    near = hha_encode(np.full((8, 8), 0.5), intrinsics(10, 10, 3.5, 3.5))
    assert np.all(near[..., 0] == 255)  # nearer than 1 m clamps to 310 and saturates
    assert np.all(hha_encode(np.full((8, 8), 3.1), intrinsics(10, 10, 3.5, 3.5))[..., 0] == 100)


@pytest.mark.parametrize("normal, floor_like", [((0.1, 0.8, 0.6), True), ((0.3, -0.4, 1.0), False)])
def test_normals_of_one_plane_and_the_gravity_they_give(normal, floor_like) -> None:
    n = np.array(normal) / np.linalg.norm(normal)
    c, r = np.meshgrid(np.arange(W), np.arange(H))
    rays = np.stack([(c - K[0, 2]) / K[0, 0], (r - K[1, 2]) / K[1, 1], np.ones((H, W))], -1)
    depth = 2.0 / (rays @ n)  # the plane n . p = 2, seen from the side n points away from
    assert np.all(depth > 0)
    normals = surface_normals(depth, K, radius=2)
    assert normals.shape == (H, W, 3) and np.allclose(normals, n, atol=1e-6)
    g = estimate_gravity(normals)
    if floor_like:  # within 45 deg of the camera's y axis: the plane is the floor, gravity its normal
        assert np.allclose(g, n, atol=1e-6)
    else:  # further: a wall, and gravity lies in its plane
        assert abs(g @ n) < 1e-6


def test_invalid_depth_encodes_as_zero(tilted) -> None:
    depth = tilted["depth"].copy()
    depth[10:20, 10:20] = 0
    depth[30:35, 100:110] = np.nan
    depth[0, :] = np.inf
    hha, g = hha_encode(depth, K, return_gravity=True)
    assert np.all(hha[10:20, 10:20] == 0) and np.all(hha[30:35, 100:110] == 0) and np.all(hha[0] == 0)
    assert np.degrees(np.arccos(np.clip(g @ tilted["gravity"], -1, 1))) < 0.5
    far = np.abs(hha[60:, 60:].astype(int) - tilted["hha"][60:, 60:])
    assert far.max() <= 1  # far from the holes only the (re-estimated) gravity can move a value


@pytest.mark.parametrize(
    "depth, camera, message",
    [
        (np.zeros((8, 8)), K, "fewer than 3 valid"),
        (np.full((8, 8), np.nan), K, "fewer than 3 valid"),
        (np.ones((8, 8, 3)), K, "H x W array"),
        (np.ones(8), K, "H x W array"),
        (np.ones((8, 8)), np.eye(2), "3 x 3"),
        (np.ones((8, 8)), np.zeros((3, 3)), "positive fx"),
    ],
)
def test_bad_input_is_one_line_error(depth, camera, message) -> None:
    with pytest.raises(PixelwiseError, match=message):
        hha_encode(depth, camera)


def make_archive(root: Path, depth: np.ndarray) -> list[str]:
    """NYUDv2 archive layout with JPEG images (the shared copy): data/images, data/depth (uint16 mm), segmentation."""
    splits = {"train": ["5001", "5002"], "val": ["5003"]}
    for k, n in enumerate(sum(splits.values(), [])):
        save_rgb(root / "data" / "images" / f"img_{n}.jpg", rgb(H, W, k))
        (root / "data" / "depth").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.rint(depth * 1000 + 40 * k).astype(np.uint16)).save(root / "data" / "depth" / f"img_{n}.png")
        save_mat(root / "segmentation" / f"img_{n}.mat", segmentation=labels(H, W, k, 1, 40).astype(np.uint8))
    for name, ids in splits.items():
        write_split(root / f"{name}.txt", ids)
    return sum(splits.values(), [])


def test_cli_writes_hha_the_reader_loads(tilted, tmp_path: Path, capsys) -> None:
    root, out = tmp_path / "nyud", tmp_path / "hha"
    ids = make_archive(root, tilted["depth"])
    with pytest.raises(PixelwiseError, match=r"missing NYUDv2 hha folder .*nyud/data/hha: .*pixelwise data hha"):
        get_dataset("nyud", root, "train", modalities="color,hha")  # the dataset's own copy has no HHA
    assert main(["data", "hha", "--dataset", "nyud", "--root", str(root), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "hha 3/3 img_5003" in captured.err and "wrote 3 HHA images" in captured.out
    assert sorted(p.name for p in (out / "data" / "hha").iterdir()) == [f"img_{n}.png" for n in ids]
    ds = get_dataset("nyud", root, "train", modalities="color,hha", hha_root=str(out))
    s = ds[0]
    assert s["hha"].shape == (3, H, W) and s["image"].shape == (3, H, W)
    hha = s["hha"].permute(1, 2, 0).numpy()
    # the file holds the encoding of the (millimetre-rounded) depth
    assert np.array_equal(hha, hha_encode(np.rint(tilted["depth"] * 1000) / 1000, K, normal_radius=7))
    assert hha[..., 1][tilted["floor"]].max() <= 1
    assert main(["data", "hha", "-d", "nyud", "-r", str(root), "-o", str(tmp_path / "v"), "--split", "val"]) == 0
    assert [p.name for p in (tmp_path / "v" / "data" / "hha").iterdir()] == ["img_5003.png"]
    with pytest.raises(PixelwiseError, match=r"missing NYUDv2 HHA file .*v/data/hha/img_5001.png: .*data hha"):
        get_dataset("nyud", root, "train", modalities="hha", hha_root=tmp_path / "v")


def test_cli_bad_depth_is_one_line_error(tmp_path: Path, capsys) -> None:
    root, out = tmp_path / "nyud", tmp_path / "hha"
    make_archive(root, np.full((H, W), 2.0))
    Image.fromarray(np.zeros((H, W), np.uint16)).save(root / "data" / "depth" / "img_5002.png")
    assert main(["data", "hha", "--dataset", "nyud", "--root", str(root), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "img_5002.png" in err[-1] and "valid readings" in err[-1]
    assert not list(out.rglob("*.tmp")) and not (out / "data" / "hha" / "img_5002.png").exists()
    assert main(["data", "hha", "--dataset", "camvid", "--root", str(root), "--out", str(out)]) == 2
    assert "nyud" in capsys.readouterr().err


def test_nyud_intrinsics_mirror_and_scale() -> None:
    plain, mirrored = nyud_intrinsics(mirrored=False), nyud_intrinsics()
    assert np.isclose(plain[0, 2], 324.582449) and np.isclose(plain[1, 2], 252.736166)  # 0-based pixel centres
    assert np.isclose(mirrored[0, 2], 639 - 324.582449) and np.isclose(mirrored[0, 0], 518.857901)
    half = scaled_intrinsics(plain, (240, 320))
    assert np.isclose(half[0, 0], 518.857901 / 2) and np.isclose(half[0, 2], (324.582449 + 0.5) / 2 - 0.5)
