"""``predict --depth``: RGB-D and RGB-HHA models (the NYUDv2 comparison nets, issue 15) run on a
photo plus its depth PNG, with the depth inputs made exactly as training read them; bad depth
arguments fail in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pixelwise import get_model
from pixelwise.checkpoint import save_model
from pixelwise.cli import main
from pixelwise.data.fileio import read_rgb
from pixelwise.data.hha import NYUD_NORMAL_RADIUS, hha_encode, intrinsics, nyud_intrinsics, scaled_intrinsics
from pixelwise.data.nyud import read_depth_metres
from pixelwise.engine.depth_inputs import DepthSource, depth_inputs
from pixelwise.engine.predict import Predictor

H, W = 48, 64
CPU = torch.device("cpu")


def _depth_mm(h: int = H, w: int = W) -> np.ndarray:
    """A room corner as a Kinect sees it: floor in the lower half, a wall behind, in millimetres."""
    rows = np.arange(h, dtype=np.float64)[:, None]
    floor = 1500.0 + 40000.0 / np.maximum(rows - h / 2 + 1, 1.0)  # nearer towards the bottom
    depth = np.where(rows > h / 2, np.minimum(floor, 3000.0), 3000.0) + np.zeros((1, w))
    noise = np.random.default_rng(1).normal(0.0, 20.0, depth.shape)  # sensor noise: the normal window matters
    return np.rint(depth + noise).astype(np.uint16)


def _scene(folder, stems=("a",), h: int = H, w: int = W):
    """Photos ``STEM.png`` in ``folder/photos`` and their depth PNGs in ``folder/depth``."""
    g = np.random.default_rng(0)
    (folder / "photos").mkdir(parents=True, exist_ok=True)
    (folder / "depth").mkdir(exist_ok=True)
    for stem in stems:
        Image.fromarray(g.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / "photos" / f"{stem}.png")
        Image.fromarray(_depth_mm(h, w)).save(folder / "depth" / f"{stem}.png")
    return folder / "photos", folder / "depth"


def _model(tmp_path, **kwargs):
    """A random Lite0 FCN of the comparison's kind (``in_channels=4``: RGB-D; ``streams``: RGB-HHA), saved."""
    torch.manual_seed(0)
    model = get_model("fcn4s_efficientnet_lite0", num_classes=5, **kwargs).eval()
    for p in model.parameters():  # the score layers start at zero: give every output a say
        if p.dim() == 4 and not p.abs().sum():
            torch.nn.init.normal_(p, std=0.05)
    return model, save_model(model, tmp_path / "model.safetensors")


def _cli_labels(tmp_path, capsys, model_path, inputs, *flags) -> dict[str, np.ndarray]:
    out = tmp_path / "out"
    rc = main(
        ["predict", "--model", str(model_path), *map(str, inputs), "--out", str(out), "--no-overlay", *map(str, flags)]
    )
    assert rc == 0, capsys.readouterr().err
    return {p.stem: np.asarray(Image.open(p)) for p in out.glob("*.png")}


def test_rgb_hha_model_gets_the_hha_training_would_read(tmp_path, capsys):
    photos, depth = _scene(tmp_path, stems=("a", "b"))
    model, path = _model(tmp_path, streams=("image", "hha"))
    labels = _cli_labels(tmp_path, capsys, path, [photos], "--depth", depth, "--backend", "eager")
    # reference: the HHA `pixelwise data hha` writes (its depth reader, NYUDv2 camera rescaled to the
    # frame, its normal window)
    metres = read_depth_metres(depth / "a.png").numpy()
    K = scaled_intrinsics(nyud_intrinsics(), (H, W))
    hha = hha_encode(metres, K, normal_radius=NYUD_NORMAL_RADIUS)
    sample = {"image": read_rgb(photos / "a.png"), "hha": torch.from_numpy(hha.transpose(2, 0, 1).copy())}
    made = depth_inputs(photos / "a.png", (H, W), ("hha",), DepthSource(depth))
    assert torch.equal(made["hha"], sample["hha"]) and set(made) == {"hha"}
    expected = Predictor(model, CPU).predict(sample)["out"].numpy()
    assert set(labels) == {"a", "b"} and np.array_equal(labels["a"], expected)
    assert len(np.unique(expected)) > 1  # not one flat class: the comparison can fail
    # another camera changes the HHA, so the labels: --intrinsics reaches the encoder
    other = _cli_labels(tmp_path / "k", capsys, path, [photos / "a.png"], "--depth", depth / "a.png",
                        "--intrinsics", "30,30,20,40")  # fmt: skip
    hha_k = hha_encode(metres, intrinsics(30, 30, 20, 40), normal_radius=NYUD_NORMAL_RADIUS)
    assert not np.array_equal(hha_k, hha)
    sample["hha"] = torch.from_numpy(hha_k.transpose(2, 0, 1).copy())
    assert np.array_equal(other["a"], Predictor(model, CPU).predict(sample)["out"].numpy())


def test_rgbd_model_gets_raw_millimetres_and_auto_runs_eager(tmp_path, capsys):
    photos, depth = _scene(tmp_path)
    model, path = _model(tmp_path, in_channels=4)
    labels = _cli_labels(tmp_path, capsys, path, [photos / "a.png"], "--depth", depth / "a.png")
    assert "eager" in capsys.readouterr().out  # --backend auto: the exported paths take colour only
    sample = {"image": read_rgb(photos / "a.png"), "depth": torch.from_numpy(_depth_mm().astype(np.float32))[None]}
    assert np.array_equal(labels["a"], Predictor(model, CPU).predict(sample)["out"].numpy())


def test_fast_paths_refuse_depth_models_in_runtime(tmp_path):
    """The rule lives in ``runtime.with_backend``, so eval, predict and any later caller share it."""
    from pixelwise.errors import PixelwiseError
    from pixelwise.runtime import with_backend

    model, _ = _model(tmp_path, in_channels=4)
    assert with_backend(model, "auto", CPU, sample={"image": torch.zeros(3, H, W, dtype=torch.uint8)}) is model
    with pytest.raises(PixelwiseError, match="image \\+ depth inputs runs on --backend eager"):
        with_backend(model, "channels_last", CPU)


def test_refused_int8_reads_no_calibration(tmp_path):
    """A lazy calibration reader is called only once int8 will really run: a depth model's int8
    request is refused before any calibration image is read."""
    from pixelwise.errors import PixelwiseError
    from pixelwise.runtime import with_backend

    model, _ = _model(tmp_path, in_channels=4)
    calls = []

    def reader():
        calls.append(1)
        return []

    with pytest.raises(PixelwiseError, match="runs on --backend eager"):
        with_backend(model, "onnxruntime-int8", CPU, calibration=reader)
    assert calls == []
    rgb, _ = _model(tmp_path / "rgb", in_channels=3)
    with pytest.raises(PixelwiseError, match="needs calibration images and none were found"):
        with_backend(rgb, "onnxruntime-int8", CPU, calibration=reader)
    assert calls == [1]  # an RGB model does read it (it returned none, hence the error)


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("error:"), err
    return lines[0]


@pytest.fixture()
def rgbd(tmp_path):
    photos, depth = _scene(tmp_path, stems=("a", "b"))
    return photos, depth, _model(tmp_path, in_channels=4)[1], tmp_path / "out"


def test_depth_arguments_that_cannot_work_fail_in_one_line(rgbd, tmp_path, capsys, monkeypatch):
    photos, depth, model, out = rgbd
    base = ["predict", "--model", str(model), "--out", str(out)]
    assert "--depth" in _error(capsys, [*base, str(photos / "a.png")])  # the model needs depth
    msg = _error(capsys, [*base, str(photos), "--depth", str(depth / "a.png")])
    assert "one file but there are 2 images" in msg
    (depth / "b.png").unlink()
    assert str(depth / "b.png") in _error(capsys, [*base, str(photos), "--depth", str(depth)])
    assert "does not exist" in _error(capsys, [*base, str(photos / "a.png"), "--depth", str(tmp_path / "nope")])
    Image.fromarray(_depth_mm(H, W + 8)).save(depth / "wide.png")
    msg = _error(capsys, [*base, str(photos / "a.png"), "--depth", str(depth / "wide.png")])
    assert str(depth / "wide.png") in msg and "(48, 72)" in msg
    msg = _error(capsys, [*base, str(photos / "a.png"), "--depth", str(depth / "a.png"), "--backend", "onnxruntime"])
    assert "--backend eager" in msg
    # int8 is refused before its calibration images are read (reading them would fail here)
    import pixelwise.runtime as runtime

    def unreadable(*_):
        raise AssertionError("calibration read for a refused backend")

    monkeypatch.setattr(runtime, "calibration_from_files", unreadable)
    msg = _error(
        capsys, [*base, str(photos / "a.png"), "--depth", str(depth / "a.png"), "--backend", "onnxruntime-int8"]
    )
    assert "--backend eager" in msg
    assert "needs --depth" in _error(capsys, [*base, str(photos / "a.png"), "--intrinsics", "1,1,1,1"])
    assert not out.exists() or not any(out.iterdir())  # nothing half-written


def test_rgb_model_refuses_depth(tmp_path, capsys):
    photos, depth = _scene(tmp_path)
    _, path = _model(tmp_path)
    argv = ["predict", "--model", str(path), str(photos / "a.png"), "--depth", str(depth / "a.png")]
    assert "colour only" in _error(capsys, [*argv, "--out", str(tmp_path / "out")])
