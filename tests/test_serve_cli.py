"""``pixelwise serve`` without the serve extra: ``--help`` works, the command names the extra."""

from __future__ import annotations

import subprocess
import sys

# hides FastAPI, uvicorn and python-multipart as if the extra were not installed
BLOCK = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('fastapi', 'uvicorn', 'multipart', 'python_multipart', 'starlette'):
            raise ModuleNotFoundError(f'No module named {name!r}', name=name)
sys.meta_path.insert(0, Block())
import importlib.util
_find = importlib.util.find_spec
importlib.util.find_spec = lambda n, *a: None if n.split('.')[0] in ('fastapi', 'uvicorn', 'multipart', 'python_multipart') else _find(n, *a)
from pixelwise.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK, *args], capture_output=True, text=True, timeout=120)


def test_help_lists_serve_without_the_extra():
    out = run("--help")
    assert out.returncode == 0 and "serve" in out.stdout
    assert run("serve", "--help").returncode == 0


def test_serve_without_the_extra_is_one_line_naming_it():
    out = run("serve", "--model", "camvid")
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "error: pixelwise serve needs the serve extra: pip install 'pixelwise[serve]' "
        "(missing: fastapi, uvicorn, python-multipart)"
    )


def test_public_host_needs_expose():
    out = run("serve", "--model", "camvid", "--host", "0.0.0.0")
    assert out.returncode == 2 and "add --expose" in out.stderr and "Traceback" not in out.stderr
