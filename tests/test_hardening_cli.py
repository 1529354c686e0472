"""Issue 12, commands: absurd numbers, unwritable destinations, worker errors, mismatched resume,
SIGTERM, closed pipes, failed benchmarks, duplicate class names -- one line, exit 2, nothing lost."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tiny_model  # noqa: F401  (registers tiny_fcn_test)
import torch
import yaml
from PIL import Image

import pixelwise
from pixelwise.cli import main

ENTRY = str(Path(__file__).with_name("engine_entry.py"))


def _one_error_line(capsys) -> str:
    """The error line; before it stderr may hold only progress-bar redraws, never a traceback."""
    err = capsys.readouterr().err
    lines = [ln.strip() for ln in err.replace("\r", "\n").splitlines() if ln.strip()]
    assert "Traceback" not in err and lines and lines[-1].startswith("error:"), err
    assert all(ln.startswith(("train:", "eval:")) for ln in lines[:-1]), err
    return lines[-1]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A folder dataset of two 16 x 16 images with 2 classes."""
    root = tmp_path_factory.mktemp("folder")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(root / "images" / f"{name}.png")
        Image.fromarray((rng.random((16, 16)) > 0.5).astype(np.uint8)).save(root / "masks" / f"{name}.png")
    (root / "classes.txt").write_text("background\nthing\n")
    return root


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    torch.manual_seed(0)
    model = pixelwise.get_model(tiny_model.NAME, num_classes=2, width=4, kernel=1).eval()
    return str(pixelwise.save_model(model, tmp_path_factory.mktemp("m") / "m.safetensors", class_names=["bg", "x"]))


def _train(folder: Path, run: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--model",
        tiny_model.NAME,
        "--dataset",
        "folder",
        "--root",
        str(folder),
        "--iterations",
        "1",
        "--train-split",
        "all",
        "--workers",
        "0",
        "--val-split",
        "none",
        "--device",
        "cpu",
        "--set",
        "model_kwargs={width: 4}",
        "--out",
        str(run),
        *extra,
    ]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--epochs", "0"], "epochs"),
        (["--epochs", "-1"], "epochs"),
        (["--iterations", "0"], "iterations"),
        (["--lr", "nan"], "lr"),
        (["--lr", "0"], "lr"),
        (["--batch-size", "0"], "batch_size"),
        (["--workers", "-1"], "workers"),
        (["--set", "crop_size=[5000, 5000]"], "crop_size"),
        (["--set", "scale_range=[2, 1]"], "scale_range"),
        (["--set", "scale_range=[0, 1]"], "scale_range"),
        (["--set", "learning_rate=0.1"], "did you mean lr"),
        # task_options: checked when the trainer starts, before the first step (issue 15's leftover)
        (["--set", "task_options={out: {silog_lambda: 0}}"], "unknown option 'silog_lambda' for the semantic task"),
        (["--set", "task_options={dpeth: {loss: silog}}"], "key 'dpeth' is neither a head"),
        (["--set", "task_options={depth: {loss: silog, silog_lambda: half}}"], "silog_lambda 'half'"),
    ],
)
def test_train_numbers_out_of_range(folder, tmp_path, capsys, extra, message):
    assert main(_train(folder, tmp_path / "run", *extra)) == 2
    assert message in _one_error_line(capsys)
    assert not (tmp_path / "run" / "last.safetensors").exists()


def test_config_file_values_are_checked_too(folder, tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "model": tiny_model.NAME,
                "dataset": "folder",
                "root": str(folder),
                "epochs": 1,
                "scale_range": [0.5, "nan"],
            }
        )
    )
    assert main(["train", "--config", str(cfg)]) == 2
    assert "scale_range" in _one_error_line(capsys)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["eval", "--limit", "0"], "--limit"),
        (["eval", "--limit", "-1"], "--limit"),
        (["eval", "--batch-size", "0"], "--batch-size"),
        (["eval", "--workers", "-2"], "--workers"),
        (["eval", "--scales", "nan"], "--scales"),
        (["eval", "--scales", "1e6"], "--scales"),
        (["predict", "x.png", "--scales", "0"], "--scales"),
        (["predict", "x.png", "--alpha", "2"], "--alpha"),
        (["predict", "x.png", "--overlap", "600"], "--overlap"),
        (["predict", "x.png", "--tile", "64", "--overlap", "64"], "--overlap"),
        (["data", "inspect", "--limit", "0"], "--limit"),
    ],
)
def test_flags_out_of_range(folder, ckpt, tmp_path, capsys, argv, message):
    common = {
        "eval": ["--model", ckpt, "--dataset", "folder", "--root", str(folder), "--split", "all"],
        "predict": ["--model", ckpt, "-o", str(tmp_path / "o")],
        "data": ["--dataset", "folder", "--root", str(folder), "--split", "all"],
    }[argv[0]]
    assert main([*argv, *common]) == 2
    assert message in _one_error_line(capsys)
    assert not (tmp_path / "o").exists()


def test_unwritable_destinations_fail_before_the_work(folder, ckpt, tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    img = folder / "images" / "a.png"
    assert main(["predict", str(img), "--model", ckpt, "-o", str(a_file)]) == 2
    assert "existing file" in _one_error_line(capsys)
    assert main(["predict", str(img), "--model", ckpt, "-o", str(a_file / "sub")]) == 2
    assert "is a file" in _one_error_line(capsys)
    assert main(["export", "--model", ckpt, "-o", str(tmp_path)]) == 2
    assert "is a folder" in _one_error_line(capsys)
    # convert checks the destination before it reads (here: a missing) caffemodel
    assert (
        main(["convert", "caffe", str(tmp_path / "none.caffemodel"), "--arch", "voc-fcn8s", "-o", str(tmp_path)]) == 2
    )
    assert "is a folder" in _one_error_line(capsys)
    assert (
        main(["data", "export", "--dataset", "folder", "--root", str(folder), "--split", "all", "-o", str(a_file)]) == 2
    )
    assert "existing file" in _one_error_line(capsys)
    assert (
        main(
            [
                "eval",
                "--model",
                ckpt,
                "--dataset",
                "folder",
                "--root",
                str(folder),
                "--split",
                "all",
                "--save-predictions",
                str(a_file),
            ]
        )
        == 2
    )
    assert "existing file" in _one_error_line(capsys)


def _unwritable_dir(tmp_path: Path) -> Path:
    """A folder this process cannot write to (root ignores permission bits: /sys refuses it too)."""
    if os.geteuid() != 0:
        d = tmp_path / "ro"
        d.mkdir()
        d.chmod(stat.S_IRUSR | stat.S_IXUSR)
        return d
    d = Path("/sys")
    try:
        (d / "pixelwise-probe").touch()
    except OSError:
        return d
    pytest.skip("no unwritable folder available to this user")


def test_read_only_places(folder, ckpt, tmp_path, capsys, monkeypatch):
    ro = _unwritable_dir(tmp_path)
    img = folder / "images" / "a.png"
    assert main(["predict", str(img), "--model", ckpt, "-o", str(ro / "out")]) == 2
    assert "cannot write" in _one_error_line(capsys)
    assert main(["export", "--model", ckpt, "-o", str(ro / "m.onnx")]) == 2
    assert "cannot write" in _one_error_line(capsys)
    monkeypatch.chdir(ro)  # train --out runs/x in a read-only working folder
    assert main(_train(folder, Path("runs/x"))) == 2
    assert "cannot write" in _one_error_line(capsys)


def test_temporary_names_are_unique(tmp_path):
    from pixelwise.atomic import atomic_path

    with atomic_path(tmp_path / "x.onnx") as one, atomic_path(tmp_path / "x.onnx") as two:
        assert one != two and one.parent == two.parent == tmp_path
        one.write_text("1")
        two.write_text("2")
    assert (tmp_path / "x.onnx").read_text() == "1" and sorted(os.listdir(tmp_path)) == ["x.onnx"]


def test_worker_errors_are_the_original_line(folder, ckpt, tmp_path, capsys):
    """An RGB mask found inside a DataLoader worker: the same one line as with --workers 0."""
    bad = tmp_path / "bad"
    (bad / "images").mkdir(parents=True)
    (bad / "masks").mkdir()
    Image.open(folder / "images" / "a.png").save(bad / "images" / "a.png")
    Image.open(folder / "images" / "a.png").save(bad / "masks" / "a.png")  # RGB, not class indices
    (bad / "classes.txt").write_text("bg\nx\n")
    for workers in ("0", "1"):
        assert (
            main(
                [
                    "eval",
                    "--model",
                    ckpt,
                    "--dataset",
                    "folder",
                    "--root",
                    str(bad),
                    "--split",
                    "all",
                    "--workers",
                    workers,
                ]
            )
            == 2
        )
        assert _one_error_line(capsys).endswith("expected a single-channel class-index PNG")
        assert main(_train(bad, tmp_path / f"run{workers}", "--workers", workers)) == 2
        assert _one_error_line(capsys).endswith("expected a single-channel class-index PNG")


def test_resume_with_another_model_names_run_and_model(folder, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_train(folder, run)) == 0
    assert stat.S_IMODE((run / "last.safetensors").stat().st_mode) == stat.S_IMODE((run / "config.yaml").stat().st_mode)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["model_kwargs"] = {"width": 8}  # a config.yaml from another architecture
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--iterations", "2"]) == 2
    err = _one_error_line(capsys)
    assert str(run) in err and tiny_model.NAME in err and "does not match" in err


def test_sigterm_leaves_no_temporary_files(tmp_path):
    torch.manual_seed(0)
    model = pixelwise.get_model(tiny_model.NAME, num_classes=8, width=8, kernel=3).eval()
    ckpt = pixelwise.save_model(model, tmp_path / "m.safetensors")
    Image.fromarray(np.zeros((600, 600, 3), np.uint8)).save(tmp_path / "big.png")
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            ENTRY,
            "predict",
            str(tmp_path / "big.png"),
            "--model",
            str(ckpt),
            "-o",
            str(out),
            "--probabilities",
            "npy",
            "--tile",
            "32",
            "--overlap",
            "8",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.glob(".*.tmp")):  # wait until the .npy is being written
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err
    assert list(out.iterdir()) == []


def test_closed_pipe_is_not_a_traceback(folder):
    proc = subprocess.Popen(
        [
            sys.executable,
            ENTRY,
            "data",
            "inspect",
            "--dataset",
            "folder",
            "--root",
            str(folder),
            "--split",
            "all",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdout.close()  # `| head` that has already exited
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert proc.returncode == 128 + signal.SIGPIPE


def test_bench_fails_when_a_configuration_failed(monkeypatch, capsys):
    import pixelwise.bench

    doc = {
        "results": [
            {"model": "m", "backend": "eager", "latency_ms": 1.0},
            {"model": "m", "backend": "onnxruntime", "error": "no onnxruntime"},
        ]
    }
    monkeypatch.setattr(pixelwise.bench, "bench", lambda opts, command=None: doc)
    monkeypatch.setattr(pixelwise.bench, "format_table", lambda d: "table")
    assert main(["bench", "--model", "m", "--backend", "eager,onnxruntime"]) == 1
    assert "onnxruntime failed: no onnxruntime" in capsys.readouterr().err


def test_duplicate_class_names_are_refused(folder, tmp_path, capsys):
    dup = tmp_path / "dup"
    for sub in ("images", "masks"):
        (dup / sub).mkdir(parents=True)
        for p in (folder / sub).iterdir():
            (dup / sub / p.name).write_bytes(p.read_bytes())
    (dup / "classes.txt").write_text("road\ncar\nroad\n")
    assert main(["data", "inspect", "--dataset", "folder", "--root", str(dup), "--split", "all"]) == 2
    assert "'road' twice" in _one_error_line(capsys)


def test_unreadable_checkpoint_says_permission(tmp_path, ckpt, capsys):
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "m.safetensors").write_bytes(Path(ckpt).read_bytes())
    locked.chmod(0)
    try:
        assert main(["predict", ckpt, "--model", str(locked / "m.safetensors"), "-o", str(tmp_path / "o")]) == 2
    finally:
        locked.chmod(0o755)
    assert "permission denied" in _one_error_line(capsys)


def test_checkpoint_is_readable_like_any_file(tmp_path):
    old = os.umask(0o022)
    try:
        path = pixelwise.save_model(
            pixelwise.get_model(tiny_model.NAME, num_classes=2, width=4), tmp_path / "m.safetensors"
        )
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
