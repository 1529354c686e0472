"""``pixelwise serve``: the web page and JSON API for one or more models (``pixelwise.serve``)."""

from __future__ import annotations

import argparse
import ipaddress

from .common import add_inference_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve models over HTTP: a web page and a JSON API (needs the serve extra)")
    p.add_argument(
        "--model",
        "-m",
        action="append",
        required=True,
        metavar="[NAME=]MODEL",
        help="shipped weights name, checkpoint or .onnx; repeat for several (the first is the default); "
        "MODEL+OTHER[@SHARE] serves their late fusion, as --fuse in predict",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--expose",
        action="store_true",
        help="allow a --host other than loopback (serves to the network: no authentication)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--threads", type=int, help="torch CPU threads for inference, fixed at startup (default: torch's)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="uvicorn worker processes on the same port, each with its own models (default 1)",
    )
    p.add_argument("--max-batch", type=int, default=8, help="most same-size images in one forward (default 8)")
    p.add_argument(
        "--batch-wait-ms", type=float, default=5.0, help="how long the batcher waits for company (default 5)"
    )
    p.add_argument("--max-queue", type=int, default=64, help="images waiting before 503 + Retry-After (default 64)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds a request may wait for its result (default 60)")
    p.add_argument("--max-bytes", type=int, default=20 * 1024 * 1024, help="largest upload in bytes (default 20 MiB)")
    p.add_argument("--max-pixels", type=int, default=40_000_000, help="largest image, H x W (default 40M)")
    p.add_argument(
        "--tile", type=int, default=512, help="sliding-window size for images over 1600x1600 pixels (default 512)"
    )
    add_inference_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import PixelwiseError
    from ..serve import require_extra

    _check_host(args.host, args.expose)
    if args.workers < 1 or (args.threads is not None and args.threads < 1):
        raise PixelwiseError("--workers and --threads must be >= 1")
    if not 0 < args.port < 65536:
        raise PixelwiseError(f"--port must be 1..65535, got {args.port}")
    require_extra()
    import os

    import uvicorn

    from ..serve.app import ENV_CONFIG, ServeConfig, build_app
    from ..serve.limits import Limits

    limits = Limits(
        max_bytes=args.max_bytes,
        max_pixels=args.max_pixels,
        tile=args.tile,
        timeout_s=args.timeout,
        max_queue=args.max_queue,
        max_batch=args.max_batch,
        batch_wait_ms=args.batch_wait_ms,
    )
    config = ServeConfig(
        models=args.model,
        backend=args.backend,
        device=args.device,
        flip=args.flip,
        scales=list(args.scales) if args.scales else None,
        tta=args.tta,
        threads=args.threads,
        limits=limits,
    )
    print(f"pixelwise serve: http://{args.host}:{args.port}/ (API schema at /openapi.json)", flush=True)
    if args.workers == 1:
        uvicorn.run(build_app(config), host=args.host, port=args.port, log_level="info")
    else:  # each worker process builds its own app (and loads the models) from the environment
        os.environ[ENV_CONFIG] = config.to_json()
        build_app(config)  # fail here, once, with a clear error rather than in every worker
        uvicorn.run(
            "pixelwise.serve.app:app_from_env",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level="info",
        )
    return 0


def _check_host(host: str, expose: bool) -> None:
    """Loopback unless ``--expose``: the service has no authentication."""
    from ..errors import PixelwiseError

    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not expose:
        raise PixelwiseError(f"--host {host} serves beyond this machine (no authentication): add --expose to confirm")
