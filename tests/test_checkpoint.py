"""Checkpoint format: round trip, metadata, atomic writes, one-line errors for bad files."""

from __future__ import annotations

import json

import pytest
import tiny_model  # noqa: F401
import torch
from safetensors.torch import save_file

import pixelwise
from pixelwise import checkpoint as ckpt
from pixelwise.cli import main
from pixelwise.engine.checkpoint import init_from
from pixelwise.errors import PixelwiseError

NAMES = ["sky", "road", "car"]
PALETTE = [(128, 128, 128), (128, 64, 128), (64, 0, 128)]


def _tiny(k: int = 3, seed: int = 0, **kw):
    torch.manual_seed(seed)
    return pixelwise.get_model(tiny_model.NAME, num_classes=k, **kw)


def _save(model, path, **fields):
    return ckpt.save_model(model, path, class_names=NAMES, palette=PALETTE, metrics={"mean_iou": 0.5}, **fields)


def test_roundtrip_tiny(tmp_path):
    model = _tiny()
    path = _save(model, tmp_path / "m.safetensors", recipe={"lr": 1e-3}, git_commit="abc")
    loaded = pixelwise.load_model(path)
    x = torch.randn(2, 3, 17, 23)
    torch.testing.assert_close(loaded(x), model.eval()(x), rtol=0, atol=0)
    meta = ckpt.read_metadata(path)
    assert meta["format_version"] == ckpt.FORMAT_VERSION
    assert meta["config"]["name"] == tiny_model.NAME and meta["heads"] == {"out": 3}
    assert meta["class_names"] == NAMES and [tuple(c) for c in meta["palette"]] == PALETTE
    assert meta["recipe"] == {"lr": 1e-3} and meta["git_commit"] == "abc" and meta["metrics"]["mean_iou"] == 0.5
    # the loaded model carries the same, as one ModelMeta
    assert loaded.meta.class_names() == NAMES and loaded.meta.palette() == PALETTE
    assert loaded.meta.heads["out"].task == "semantic" and loaded.meta.source == str(path)
    assert (loaded.meta.recipe, loaded.meta.git_commit, loaded.meta.metrics) == ({"lr": 1e-3}, "abc", {"mean_iou": 0.5})
    assert pixelwise.Preprocessing.from_dict(meta["preprocessing"]) == model.preprocessing
    assert not loaded.training


def test_roundtrip_registered_fcn(tmp_path):
    """A real FCN (fixed bilinear upsampler buffers included) rebuilds from its metadata alone."""
    torch.manual_seed(0)
    model = pixelwise.get_model("fcn8s_efficientnet_lite0", num_classes=5).eval()
    for p in model.parameters():  # score layers start at zero: make the output depend on them
        p.data.normal_(0, 0.02)
    path = ckpt.save_model(model, tmp_path / "fcn.safetensors")
    loaded = pixelwise.load_model(path)
    x = torch.randn(1, 3, 40, 56)
    torch.testing.assert_close(loaded(x), model(x))
    assert set(loaded.state_dict()) == set(model.state_dict())


def test_write_is_atomic(tmp_path, monkeypatch):
    """A failure mid-write leaves the previous checkpoint intact and no temporary file."""
    path = _save(_tiny(seed=0), tmp_path / "m.safetensors")
    before = path.read_bytes()

    import safetensors.torch

    def broken(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(OSError):
        _save(_tiny(seed=1), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


def _one_line_error(path) -> str:
    with pytest.raises(PixelwiseError) as e:
        pixelwise.load_model(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_bad_files(tmp_path):
    good = _save(_tiny(), tmp_path / "good.safetensors")
    assert "not found" in _one_line_error(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x89PNG not a checkpoint at all" * 10)
    assert "not a pixelwise checkpoint" in _one_line_error(junk)
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    assert "not a pixelwise checkpoint" in _one_line_error(plain)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-100])
    _one_line_error(truncated)
    wrong = tmp_path / "wrong.safetensors"
    save_file({"w": torch.zeros(2)}, str(wrong), metadata={"pixelwise": "{not json"})
    assert "corrupt" in _one_line_error(wrong)
    future = tmp_path / "future.safetensors"
    meta = {"format_version": 99, "config": {"name": tiny_model.NAME}}
    save_file({"w": torch.zeros(2)}, str(future), metadata={"pixelwise": json.dumps(meta)})
    assert "upgrade" in _one_line_error(future)
    mismatch = tmp_path / "mismatch.safetensors"
    meta = {"format_version": 1, "config": {"name": tiny_model.NAME, "heads": {"out": 3}}}
    save_file({"w": torch.zeros(2)}, str(mismatch), metadata={"pixelwise": json.dumps(meta)})
    assert "does not match" in _one_line_error(mismatch)


def test_cli_reports_bad_checkpoint(tmp_path, capsys):
    junk = tmp_path / "junk.safetensors"
    junk.write_text("hello")
    img = tmp_path / "x.png"
    img.write_bytes(b"")
    assert main(["predict", "--model", str(junk), str(img), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err


def test_init_from_copies_same_named_layers(tmp_path):
    """Staged training: FCN-16s starts from FCN-32s (every shared layer copied, new ones kept)."""
    torch.manual_seed(0)
    s32 = pixelwise.get_model("fcn32s_efficientnet_lite0", num_classes=4)
    for p in s32.parameters():
        p.data.normal_()
    path = ckpt.save_model(s32, tmp_path / "32s.safetensors")
    s16 = pixelwise.get_model("fcn16s_efficientnet_lite0", num_classes=4)
    copied = init_from(s16, path)
    sd16, sd32 = s16.state_dict(), s32.state_dict()
    assert "decoders.out.score_fr.weight" in copied
    for k in copied:
        torch.testing.assert_close(sd16[k], sd32[k])
    new = [k for k in sd16 if k not in sd32]
    assert new and all(k not in copied for k in new)
    other = pixelwise.get_model("fcn16s_efficientnet_lite0", num_classes=7)
    with pytest.raises(PixelwiseError, match="init_from"):
        init_from(other, path)


def test_training_state_roundtrip(tmp_path):
    model = _tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(1, 3, 8, 8)).sum().backward()
    opt.step()
    state = {"optimizer": opt.state_dict(), "step": 7, "best": 0.25, "rng": torch.get_rng_state()}
    ckpt.save_state(tmp_path / "state.pt", state)
    back = ckpt.load_state(tmp_path / "state.pt")
    assert back["step"] == 7 and back["best"] == 0.25
    opt.load_state_dict(back["optimizer"])
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(PixelwiseError, match="not a readable training state"):
        ckpt.load_state(tmp_path / "bad.pt")
    with pytest.raises(PixelwiseError, match="missing"):
        ckpt.load_state(tmp_path / "none.pt")


def test_load_model_resolves_shipped_names_like_the_cli():
    from pixelwise.engine.checkpoint import resolve_model

    by_api, by_cli = pixelwise.load_model("camvid"), resolve_model("camvid")
    assert by_api.config == by_cli.config and by_api.meta == by_cli.meta
    assert by_api.meta.source == "camvid" and by_api.meta.class_names()[0] == "Sky"
    x = torch.zeros(1, 3, 16, 16)
    torch.testing.assert_close(by_api(x), by_cli(x), rtol=0, atol=0)
    with pytest.raises(PixelwiseError, match="checkpoint not found: camvid2 .shipped weights: .*camvid"):
        pixelwise.load_model("camvid2")


def test_registry_name_without_weights_is_refused_unless_random_weights(tmp_path, capsys):
    img = tmp_path / "x.png"
    from PIL import Image

    Image.new("RGB", (20, 16)).save(img)
    args = ["predict", "--model", tiny_model.NAME, str(img), "-o", str(tmp_path / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "without trained weights" in err and "--random-weights" in err
    assert main(args + ["--random-weights"]) == 0
    assert (tmp_path / "out" / "x.png").is_file()
