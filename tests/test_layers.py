"""The package graph of ``docs/DESIGN.md``: every import in ``src/pixelwise`` points down the layers.

Every ``import``/``from ... import`` counts -- module level, inside functions, under
``TYPE_CHECKING`` -- and so do ``"pixelwise.x"`` strings (``importlib.import_module`` targets), so a
dependency cannot hide in a function-level import.  A new top-level module or package must be
declared in ``LAYERS`` (and in DESIGN.md) before it can import anything.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "pixelwise"

#: low to high.  A unit may import units of lower layers only; units sharing a layer are independent
#: (``data`` never imports ``models``, ``bench`` never imports ``serve``).  ``pixelwise`` is the root
#: package's ``__version__``; the root ``__init__`` itself is the lazy public facade and is exempt.
LAYERS: list[tuple[str, ...]] = [
    ("pixelwise", "errors"),
    ("atomic", "registry", "ranges", "legend"),  # leaf helpers (registries, option ranges, overlay legends)
    ("preprocessing", "boundary_matching"),  # boundary_matching: the fast matcher, numpy/scipy only
    ("metrics", "boundary_metrics"),
    ("contract",),
    ("checkpoint",),
    ("tasks",),
    ("data", "models", "demo"),
    ("interop",),
    ("runtime",),
    ("engine",),
    ("bench", "serve"),
    ("cli",),
]
LEVEL = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}
MODULE_STRING = re.compile(r"pixelwise(\.\w+)+")


def _unit(module: str) -> str:
    """``pixelwise.engine.train`` -> ``engine``; names that are no module of the root -> ``pixelwise``."""
    parts = module.split(".")
    if len(parts) < 2:
        return "pixelwise"
    name = parts[1]
    return name if (SRC / f"{name}.py").is_file() or (SRC / name).is_dir() else "pixelwise"


def _module_name(path: Path) -> tuple[str, str]:
    """Dotted name of ``path`` and the package its relative imports are relative to."""
    parts = ("pixelwise",) + path.relative_to(SRC).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute ``pixelwise...`` module) for every import in ``path``, wherever it sits."""
    _, package = _module_name(path)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                if node.module:
                    found.append((node.lineno, f"{base}.{node.module}"))
                else:  # ``from .. import checkpoint``: each name may be a module
                    found += [(node.lineno, f"{base}.{a.name}") for a in node.names]
            elif node.module:
                found.append((node.lineno, node.module))
                if node.module == "pixelwise":
                    found += [(node.lineno, f"pixelwise.{a.name}") for a in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_STRING.fullmatch(node.value):
            found.append((node.lineno, node.value))
    return [(line, m) for line, m in found if m == "pixelwise" or m.startswith("pixelwise.")]


def _sources() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p != SRC / "__init__.py")


def violations() -> list[str]:
    """One line per import that points sideways or up, or from an undeclared unit."""
    bad = []
    for path in _sources():
        name, _ = _module_name(path)
        me = _unit(name)
        if me not in LEVEL:
            bad.append(f"{path.relative_to(SRC.parent)}: unit '{me}' is not declared in LAYERS")
            continue
        for line, target in imports(path):
            other = _unit(target)
            if other == me:
                continue
            if other not in LEVEL:
                bad.append(f"{path.relative_to(SRC.parent)}:{line} imports undeclared '{target}'")
            elif other == "pixelwise" and target not in ("pixelwise", "pixelwise.__version__"):
                bad.append(f"{path.relative_to(SRC.parent)}:{line} imports '{target}' through the root facade")
            elif LEVEL[other] >= LEVEL[me] and other != "pixelwise":
                bad.append(
                    f"{path.relative_to(SRC.parent)}:{line} {me} imports {target} "
                    f"({'same layer' if LEVEL[other] == LEVEL[me] else 'a higher layer'})"
                )
    return bad


def test_every_import_points_down_the_layers():
    assert violations() == []


def test_the_checker_sees_function_level_imports(tmp_path, monkeypatch):
    """A function-level upward import (the kind that used to hide cycles) is reported."""
    fake = tmp_path / "pixelwise"
    (fake / "models").mkdir(parents=True)
    (fake / "engine").mkdir()
    (fake / "models" / "__init__.py").write_text("")
    (fake / "engine" / "__init__.py").write_text("")
    (fake / "models" / "weights.py").write_text("def f():\n    from ..engine.checkpoint import read_metadata\n")
    (fake / "engine" / "train.py").write_text("from ..models import weights\n")  # downward: fine
    monkeypatch.setattr(sys.modules[__name__], "SRC", fake)
    assert violations() == ["pixelwise/models/weights.py:2 models imports pixelwise.engine.checkpoint (a higher layer)"]


@pytest.mark.parametrize(
    "unit",
    sorted(
        {
            p.stem if p.suffix else p.name
            for p in SRC.iterdir()
            if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").is_file())
        }
    ),
)
def test_every_top_level_unit_is_declared(unit):
    assert unit in LEVEL, f"declare pixelwise.{unit} in tests/test_layers.py LAYERS and docs/DESIGN.md"
