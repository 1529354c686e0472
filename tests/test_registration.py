"""Extension by registration: each recipe of docs/DESIGN.md ("add a backbone / a dataset / a command"),
done here in a few lines, plus the checks every builder shares (unknown keywords, duplicate names)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from pixelwise import cli
from pixelwise.data import Record, SegmentationDataset, collate, get_dataset, list_datasets, register_dataset
from pixelwise.data.base import to_target
from pixelwise.data.fileio import read_index_png
from pixelwise.data.registry import DATASETS
from pixelwise.errors import PixelwiseError
from pixelwise.models import Backbone, FeatureInfo, get_model, list_backbones, list_models, register_backbone
from pixelwise.models.registry import BACKBONES, MODELS
from pixelwise.preprocessing import Preprocessing


@pytest.fixture(autouse=True)
def scratch_registries(monkeypatch):
    """Registrations made by a test vanish after it (the built-ins are loaded first, then copied)."""
    for registry in (BACKBONES, MODELS, DATASETS, cli.EXTRA_COMMANDS):
        registry.names()
        monkeypatch.setattr(registry, "_entries", dict(registry._entries))


# --- recipe: add a backbone -------------------------------------------------------------------
def test_recipe_add_a_backbone_gives_fcn_models_that_train():
    @register_backbone("toy_net", fcn=("32s", "16s"))
    class ToyNet(Backbone):
        """``N x C x H x W`` -> ``{"s16": N x w x H/16 x W/16, "s32": N x 2w x H/32 x W/32}``."""

        def __init__(self, in_channels: int = 3, width: int = 4):
            super().__init__()
            self.preprocessing = Preprocessing("RGB", 1 / 255, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
            self.s16 = nn.Conv2d(in_channels, width, 16, stride=16)
            self.s32 = nn.Conv2d(width, 2 * width, 2, stride=2)
            self.feature_info = [FeatureInfo("s16", width, 16), FeatureInfo("s32", 2 * width, 32)]

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            s16 = torch.relu(self.s16(x))
            return {"s16": s16, "s32": torch.relu(self.s32(s16))}

    assert "toy_net" in list_backbones()
    assert {"fcn32s_toy_net", "fcn16s_toy_net"} <= set(list_models())
    torch.manual_seed(0)
    model = get_model("fcn16s_toy_net", num_classes=3, width=6)
    assert model.config == {
        "name": "fcn16s_toy_net",
        "heads": {"out": 3},
        "in_channels": 3,
        "geometry": "aligned",
        "learnable_upsampling": False,
        "width": 6,
        "preprocessing": model.preprocessing.to_dict(),
    }
    x, y = torch.randn(2, 3, 40, 50), torch.randint(0, 3, (2, 40, 50))
    assert model(x).shape == (2, 3, 40, 50)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(5):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    with pytest.raises(PixelwiseError, match="no ImageNet weights are known for the ToyNet backbone"):
        get_model("fcn32s_toy_net", weights="imagenet")
    with pytest.raises(PixelwiseError, match="geometry 'caffe' is not available for fcn32s_toy_net: use 'aligned'"):
        get_model("fcn32s_toy_net", geometry="caffe")


def test_a_variant_needs_a_known_name_and_a_name_registers_once():
    with pytest.raises(ValueError, match="unknown FCN variant '1s'"):
        register_backbone("toy2", fcn=("1s",))
    with pytest.raises(ValueError, match="backbone 'resnet18' registered twice"):
        register_backbone("resnet18")(Backbone)


# --- recipe: add a dataset --------------------------------------------------------------------
def _write_toy_dataset(root: Path, n: int) -> None:
    (root / "img").mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((6, 8, 3), 40 * i, np.uint8)).save(root / "img" / f"{i}.png")
        Image.fromarray(np.full((6, 8), i % 2, np.uint8)).save(root / "img" / f"{i}_label.png")


def test_recipe_add_a_dataset_then_get_and_batch_it(tmp_path):
    @register_dataset("toy")
    class Toy(SegmentationDataset):
        """``root/img/N.png`` images with ``N_label.png`` class maps (0 = ground, 1 = sky)."""

        name = "toy"

        def __init__(self, root: str | Path, split: str = "all", **kw) -> None:
            files = sorted(p for p in Path(root, "img").glob("*.png") if not p.stem.endswith("_label"))
            records = [Record(p.stem, {"image": p, "label": p.with_name(f"{p.stem}_label.png")}) for p in files]
            super().__init__(
                records, class_names=["ground", "sky"], palette=[(0, 128, 0), (0, 0, 255)], source=str(root), **kw
            )

        def load_target(self, rec: Record) -> torch.Tensor:
            return to_target(read_index_png(rec.files["label"]))

    _write_toy_dataset(tmp_path, 3)
    assert "toy" in list_datasets()
    data = get_dataset("toy", tmp_path, "all")
    batch = collate([data[0], data[1], data[2]])
    assert batch["image"].shape == (3, 3, 6, 8) and batch["image"].dtype == torch.uint8
    assert batch["target"][:, 0, 0].tolist() == [0, 1, 0]
    assert batch["image"][:, 0, 0, 0].tolist() == [0, 40, 80]
    with pytest.raises(
        PixelwiseError, match=r"dataset 'toy' got unknown option 'skipbad' \(did you mean 'skip_bad'\?\)"
    ):
        get_dataset("toy", tmp_path, "all", skipbad=True)


# --- recipe: add a command --------------------------------------------------------------------
def test_recipe_add_a_command(capsys):
    @cli.register_command("hello")
    def register(sub) -> None:
        p = sub.add_parser("hello", help="print a greeting")
        p.add_argument("--name", default="world")
        p.set_defaults(func=lambda args: print(f"hello {args.name}"))

    assert cli.main(["hello", "--name", "pixelwise"]) == 0
    assert capsys.readouterr().out == "hello pixelwise\n"
    with pytest.raises(ValueError, match="built in"):
        cli.register_command("train")


# --- the checks every builder shares ----------------------------------------------------------
def test_unknown_model_keyword_is_a_one_line_error_with_a_suggestion():
    with pytest.raises(PixelwiseError) as e:
        get_model("fcn8s_resnet50", learnable_upsample=True)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(
        "model 'fcn8s_resnet50' got unknown option 'learnable_upsample' "
        "(did you mean 'learnable_upsampling'?); valid options: geometry, heads, in_channels, "
    )


def test_backbone_options_are_model_options_and_no_more():
    get_model("fcn32s_efficientnet_lite0", num_classes=2, drop_path=0.1)  # the backbone's own option
    with pytest.raises(PixelwiseError, match="'layout'.*valid options: .*drop_path"):
        get_model("fcn32s_efficientnet_lite0", layout="torchvision")  # an AlexNet option
    with pytest.raises(PixelwiseError, match="unknown option 'colour'; valid"):
        get_model("fcn32s_alexnet", colour=True)  # nothing close: no suggestion


def test_unknown_keyword_of_a_plain_builder():
    import tiny_model  # registered with register_model: its keywords come from its signature

    with pytest.raises(PixelwiseError, match="got unknown option 'widht' \\(did you mean 'width'\\?\\)"):
        get_model(tiny_model.NAME, widht=8)


def test_config_rebuilds_the_preprocessing_in_force():
    """``get_model(**model.config)`` is the same model, preprocessing included (what checkpoints rely on)."""
    hha = Preprocessing("BGR", 1.0, (132.431, 94.076, 118.477), (1.0, 1.0, 1.0), ("hha",))
    with torch.device("meta"):
        model = get_model("fcn32s_vgg16", num_classes=2, preprocessing=hha)
        assert get_model(**model.config).preprocessing == hha
        rgbd = get_model("fcn32s_vgg16", num_classes=2, in_channels=4)
        assert rgbd.preprocessing.modalities == ("image", "depth")
        assert get_model(**rgbd.config).preprocessing == rgbd.preprocessing


class _EntryPoint:
    """Stands in for an installed package's ``[project.entry-points."pixelwise_plugins"]`` entry."""

    def __init__(self, name: str, load) -> None:
        self.name, self.value, self.load = name, f"{name}_package.plugin", load


def test_installed_plugins_register_on_first_lookup_and_a_broken_one_only_warns(monkeypatch, capsys):
    import importlib.metadata

    from pixelwise import registry

    def plugin() -> None:  # what importing the plugin's module does
        @cli.register_command("plugged")
        def register(sub) -> None:
            sub.add_parser("plugged").set_defaults(func=lambda args: print("plugged in"))

    def broken() -> None:
        raise ImportError("No module named 'missing_dependency'")

    entries = {"pixelwise_plugins": [_EntryPoint("good", plugin), _EntryPoint("bad", broken)]}
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: entries.get(group, []))
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    with pytest.warns(UserWarning, match=r"plugin 'bad' \(bad_package.plugin\) failed to load: No module named"):
        assert cli.main(["plugged"]) == 0
    assert capsys.readouterr().out == "plugged in\n"
    assert "fcn8s_vgg16" in list_models()  # the built-ins are untouched
