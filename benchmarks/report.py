"""Render ``benchmarks/RESULTS.md`` from ``results.json``: machine, commands, tables, goal checks."""

from __future__ import annotations

from pixelwise.bench.runner import format_table
from pixelwise.runtime import FP32_BACKENDS

#: the reduced-precision paths of goal 3
REDUCED = ("bf16", "onnxruntime-int8")


def _ok(rows: list[dict]) -> list[dict]:
    return [r for r in rows if "latency_ms" in r]


def _best(doc: dict, backends=None) -> dict | None:
    rows = [r for r in _ok(doc.get("results", [])) if backends is None or r["backend"] in backends]
    return min(rows, key=lambda r: r["latency_ms"]) if rows else None


def _get(doc: dict, backend: str) -> dict | None:
    return next((r for r in _ok(doc.get("results", [])) if r["backend"] == backend), None)


def _mark(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**not met**")


def goals(s: dict) -> list[str]:
    """One line per issue-6 goal: measured figure, threshold, met or not."""
    out = []
    caffe, aligned = s.get("vgg_caffe", {}), s.get("vgg_aligned", {})
    e, f = _get(caffe, "eager"), _best(caffe, FP32_BACKENDS)
    if e and f:
        out.append(
            f"1. FCN-8s VGG16 500x500 Caffe fp32: best fp32 path `{f['backend']}` {f['latency_ms']:.0f} ms vs plain "
            f"eager {e['latency_ms']:.0f} ms ({e['latency_ms'] / f['latency_ms']:.2f}x) -- {_mark(f['latency_ms'] <= e['latency_ms'] * 1.02)}; "
            f"{f['conv_gflops_per_s']:.0f} conv GFLOP/s = {100 * f['matmul_peak_fraction']:.0f}% of the measured "
            f"{caffe['matmul_peak_gflops']:.0f} GFLOP/s matmul peak (goal 90%) -- {_mark(f['matmul_peak_fraction'] >= 0.9)}"
        )
    fa = _best(aligned, FP32_BACKENDS)
    if f and fa:
        ea = _get(aligned, "eager")
        r = f["latency_ms"] / fa["latency_ms"]
        out.append(
            f"2. Aligned vs Caffe geometry, 500x500, best fp32 each: {fa['latency_ms']:.0f} vs {f['latency_ms']:.0f} ms = "
            f"{r:.2f}x (goal 1.8x) -- {_mark(r >= 1.8)}"
            + (
                f"; eager vs eager {e['latency_ms'] / ea['latency_ms']:.2f}x; conv work "
                f"{ea['conv_gflop']:.0f} vs {e['conv_gflop']:.0f} GFLOP"
                if ea and e
                else ""
            )
        )
    g = s.get("geometry")
    if g and "error" not in g:
        out.append(
            f"   Same weights without the pad: {100 * g['pixel_agreement']:.1f}% of pixels get the same label, mean relative "
            f"logit change {g['mean_relative_logit_difference']:.2f} on {g['images']} CamVid val images "
            f"({'trained model' if g['scored'] else 'random VGG16 weights: no Caffe-geometry model trained here'})"
        )
    for geo, doc, fp in (("aligned", aligned, fa), ("Caffe", caffe, f)):
        low = _best(doc, REDUCED)
        if low and fp:
            r = fp["latency_ms"] / low["latency_ms"]
            others = ", ".join(
                f"`{x['backend']}` {fp['latency_ms'] / x['latency_ms']:.2f}x"
                for x in _ok(doc.get("results", []))
                if x["backend"] in REDUCED and x is not low
            )
            out.append(
                f"{'3.' if geo == 'aligned' else '  '} Reduced precision vs best fp32, {geo} 500x500: `{low['backend']}` "
                f"{low['latency_ms']:.0f} vs {fp['latency_ms']:.0f} ms = {r:.2f}x (goal 2x) -- {_mark(r >= 2)}"
                + (f"; also {others}" if others else "")
            )
    allrows = _ok(caffe.get("results", [])) + _ok(aligned.get("results", []))
    if allrows and e:
        b = min(allrows, key=lambda r: r["latency_ms"])
        r = e["latency_ms"] / b["latency_ms"]
        out.append(
            f"   Fastest path for FCN-8s VGG16 500x500: {b['geometry']} `{b['backend']}` {b['latency_ms']:.0f} ms = {r:.2f}x "
            f"the plain eager Caffe baseline (goal 3.5x) -- {_mark(r >= 3.5)}"
        )
    acc = s.get("accuracy", {})
    for low in REDUCED:
        if "mean_iou" in acc.get("eager", {}) and "mean_iou" in acc.get(low, {}):
            d = 100 * (acc["eager"]["mean_iou"] - acc[low]["mean_iou"])
            out.append(
                f"   CamVid val mean IU fp32 {100 * acc['eager']['mean_iou']:.2f} vs `{low}` {100 * acc[low]['mean_iou']:.2f} "
                f"({acc['eager']['images']} images): {d:+.2f} points lost (goal <= 1) -- {_mark(round(d, 2) <= 1)}"
            )
    cam = s.get("camvid", {})
    ce, cb = _get(cam, "eager"), _best(cam)
    if ce and cb:
        cf = _best(cam, FP32_BACKENDS)
        out.append(
            f"4. CamVid model 360x480 batch 1: plain eager {ce['images_per_s']:.1f} img/s, best fp32 `{cf['backend']}` "
            f"{cf['images_per_s']:.1f} img/s (goal 15) -- {_mark(cf['images_per_s'] >= 15)}; fastest `{cb['backend']}` "
            f"{cb['images_per_s']:.1f} img/s (goal 25) -- {_mark(cb['images_per_s'] >= 25)}"
        )
    large = [r for r in s.get("large", {}).get("runs", []) if "seconds" in r]
    if large:
        big = max(large, key=lambda r: r["megapixels"])
        key = "image_seconds_per_megapixel" if all(r.get("image_seconds") for r in large) else "seconds_per_megapixel"
        # tiled runs only: below 1600x1600 the default is one whole-image window, a different (cheaper) path
        tiled = [r for r in large if r["megapixels"] > 2.56 or "--tile" in r.get("args", [])]
        spread = max(r[key] for r in tiled) / min(r[key] for r in tiled) if len(tiled) > 1 else None
        line = (
            f"5. `pixelwise predict` {big['size'][1]}x{big['size'][0]}: peak RSS {big['peak_rss_mb']:.0f} MB (goal < 2048) -- "
            f"{_mark(big['peak_rss_mb'] < 2048)}"
        )
        if spread:
            line += (
                f"; {'per-image' if key.startswith('image') else 'whole-command'} seconds per megapixel on the tiled "
                f"path within {spread:.2f}x across {len(tiled)} sizes from {min(r['megapixels'] for r in tiled):.1f} to "
                f"{big['megapixels']:.1f} MP (linear = 1.00; goal: within 1.25x) -- {_mark(spread <= 1.25)}"
            )
        out.append(line)
    return out


def _bench_block(title: str, doc: dict) -> list[str]:
    if not doc or "results" not in doc:
        return []
    lines = [f"### {title}", "", f"`{doc.get('command')}`", ""]
    if doc.get("about_model"):
        lines += [f"Model: {doc['about_model']}.", ""]
    return lines + ["```", format_table(doc), "```", ""]


def render(doc: dict, analysis: str) -> str:
    s, m = doc.get("sections", {}), doc.get("machine", {})
    lines = [
        "# pixelwise benchmarks",
        "",
        f"Machine: **{m.get('cpu')}**, {m.get('cores')} cores ({', '.join(m.get('cpu_flags', []))}), "
        f"{m.get('memory_gb')} GB; torch {m.get('torch')}, onnxruntime {m.get('onnxruntime')}, Python {m.get('python')}; "
        f"rendered {m.get('date')}.",
        "",
        "Reproduce: `python benchmarks/run_benchmarks.py` (writes `benchmarks/results.json` and this file); "
        "single configurations: `pixelwise bench --model M --size H W --backend ...`.",
        "",
        "Latency is the median of the timed runs after warm-up; every configuration runs in its own process "
        "(peak RSS = `VmHWM` of the measured phase, weights included); conv GFLOP/s = convolution FLOPs "
        "(`pixelwise.models.flops.conv_flops`) / latency; %peak compares with a 4096^3 fp32 `torch.mm` at the "
        "same thread count measured in the same run (the bf16 row: a bf16 `torch.mm`).",
        "",
        "## Goals (issue 6)",
        "",
    ]
    lines += goals(s) + [""]
    for dt, by_threads in s.get("matmul", {}).items():
        if isinstance(by_threads, dict) and all(isinstance(v, dict) for v in by_threads.values()):
            lines.append(
                f"{dt} matmul peak (4096^3 `torch.mm`): "
                + ", ".join(f"{t} thread(s) {v.get('gflops', float('nan')):.0f} GFLOP/s" for t, v in by_threads.items())
                + "  "
            )
    if "threads" in doc:
        lines += [f"Threads used for every table: **{doc['threads']}** (the faster fp32 matmul above).", ""]
    lines += ["## Tables", ""]
    for key, title in [
        ("vgg_caffe", "FCN-8s VGG16, 500x500, Caffe geometry (random weights)"),
        ("vgg_aligned", "FCN-8s VGG16, 500x500, aligned geometry"),
        ("camvid", "Shipped CamVid model, 360x480"),
        ("threads", "FCN-8s VGG16 500x500 Caffe, fast paths at the thread count not chosen"),
        ("nyud", "NYUD model (semantic + depth heads), 480x640, batch 1"),
        ("bsds", "BSDS boundary model, 321x481, batch 1"),
    ]:
        lines += _bench_block(title, s.get(key, {}))
    for key, doc in s.get("malloc", {}).items():
        if isinstance(doc, dict):
            lines += _bench_block(
                f"{key}, eager, glibc malloc thresholds raised (compare with the eager row above)", doc
            )
    lines += _quality(s)
    return "\n".join(lines + ["## Analysis", "", analysis])


def _quality(s: dict) -> list[str]:
    lines = []
    acc = s.get("accuracy")
    if acc:
        lines += [
            "### CamVid val accuracy per backend",
            "",
            "| backend | mean IU | pixel acc | images | s |",
            "|---|---|---|---|---|",
        ]
        for b, r in acc.items():
            if isinstance(r, dict) and "mean_iou" in r:
                lines.append(
                    f"| {b} | {100 * r['mean_iou']:.2f} | {100 * r['pixel_accuracy']:.2f} | {r['images']} | {r['seconds']:.1f} |"
                )
            elif isinstance(r, dict) and "error" in r:
                lines.append(f"| {b} | error: {r['error']} | | | |")
        lines.append("")
    large = s.get("large", {}).get("runs", [])
    if large:
        lines += [
            "### `pixelwise predict` on large photos (whole command, model load included)",
            "",
            "| H x W | MP | extra args | command s | image s | image s/MP | peak RSS MB |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in large:
            if "seconds" in r:
                img = r.get("image_seconds")
                lines.append(
                    f"| {r['size'][0]} x {r['size'][1]} | {r['megapixels']:.2f} | {' '.join(r['args']) or '(default)'} | "
                    f"{r['seconds']:.2f} | {img if img is None else f'{img:.2f}'} | "
                    f"{r.get('image_seconds_per_megapixel') or 0:.2f} | {r['peak_rss_mb']:.0f} |"
                )
            else:
                lines.append(f"| {r['size'][0]} x {r['size'][1]} | | | error: {r.get('error')} | | |")
        lines.append("")
    prof = s.get("profile", {})
    for key, r in prof.items():
        if isinstance(r, dict) and "ops" in r:
            lines += [
                f"### Profile: {key} (eager, self CPU time per op per forward)",
                "",
                "| op | s | share |",
                "|---|---|---|",
            ]
            lines += [f"| `{o['op']}` | {o['self_s']:.3f} | {100 * o['share']:.1f}% |" for o in r["ops"]] + [""]
    tr = s.get("train", {})
    if tr:
        lines += [
            "### Training throughput (synthetic batch, the recipe's optimizer and loss)",
            "",
            "| recipe | images/s | ms/step | peak RSS MB |",
            "|---|---|---|---|",
        ]
        for k, r in tr.items():
            if isinstance(r, dict) and "images_per_s" in r:
                lines.append(f"| {k} | {r['images_per_s']:.2f} | {1e3 * r['step_s']:.0f} | {r['peak_rss_mb']:.0f} |")
        lines.append("")
    return lines
