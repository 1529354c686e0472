"""A bounded load generator for a running ``pixelwise serve`` (the load test and
``benchmarks/serve_load.py`` share it).  Standard library only: ``http.client`` in threads.

:func:`run_load` starts ``clients`` threads, each sending ``requests`` uploads one after another
(every request is bounded by ``timeout_s``), and returns one :class:`Reply` per request.  Only
loopback addresses are accepted: this is for measuring a server on this machine.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Upload:
    """One request body: ``data`` sent as multipart field ``file`` with ``content_type``;
    ``good``: whether the server should accept it."""

    name: str
    data: bytes
    content_type: str = "image/png"
    good: bool = True
    query: str = ""


@dataclass(frozen=True)
class Reply:
    upload: Upload
    status: int
    seconds: float
    body: dict


def multipart(upload: Upload) -> tuple[bytes, str]:
    """``multipart/form-data`` body with the upload as field ``file`` -> (body, content type)."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{upload.name}"\r\n'
        f"Content-Type: {upload.content_type}\r\n\r\n"
    ).encode()
    return head + upload.data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _loopback(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"load is only generated against this machine, not {parts.hostname}")
    return parts.hostname, parts.port or 80


def post(url: str, upload: Upload, model: str | None = None, timeout_s: float = 120.0) -> Reply:
    """One ``POST /api/segment``; any answer (also 4xx/5xx) becomes a :class:`Reply`."""
    host, port = _loopback(url)
    body, ctype = multipart(upload)
    query = "&".join(q for q in (f"model={model}" if model else "", upload.query) if q)
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    t0 = time.perf_counter()
    try:
        conn.request("POST", "/api/segment" + (f"?{query}" if query else ""), body, {"Content-Type": ctype})
        resp = conn.getresponse()
        raw = resp.read()
        status = resp.status
    except OSError as e:  # connection refused/reset/timeout: status 0, kept as an error
        return Reply(upload, 0, time.perf_counter() - t0, {"error": f"{type(e).__name__}: {e}"})
    finally:
        conn.close()
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = {"error": f"non-JSON body ({len(raw)} bytes)"}
    return Reply(upload, status, time.perf_counter() - t0, parsed)


def run_load(
    url: str,
    uploads: Sequence[Upload],
    *,
    clients: int,
    requests: int,
    model: str | None = None,
    timeout_s: float = 120.0,
) -> list[Reply]:
    """``clients`` concurrent clients x ``requests`` sequential uploads each; client ``c``'s ``r``-th
    request sends ``uploads[(c * requests + r) % len(uploads)]``."""
    replies: list[Reply] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        for r in range(requests):
            reply = post(url, uploads[(c * requests + r) % len(uploads)], model, timeout_s)
            with lock:
                replies.append(reply)

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout_s * requests + 10)
    return replies


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, path: str, timeout_s: float = 5.0) -> tuple[int, dict]:
    host, port = _loopback(url)
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


@contextmanager
def server_process(
    args: Sequence[str],
    *,
    entry: Sequence[str] | None = None,
    startup_s: float = 120.0,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """Run ``pixelwise serve ARGS --port P`` (on 127.0.0.1) in a child process until the block ends;
    yields its base URL once ``/readyz`` says ready.  ``entry``: the command before ``serve``
    (default: this Python running ``pixelwise.cli``)."""
    port = free_port()
    cmd = [
        *(entry or [sys.executable, "-c", "import sys; from pixelwise.cli import main; sys.exit(main())"]),
        "serve",
        *args,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    log = tempfile.TemporaryFile("w+")  # a file, not a pipe: a full pipe would stall the server
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"server exited with {proc.returncode}: {log.read()[-2000:]}")
            try:
                if get_json(url, "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready after {startup_s:g} s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
