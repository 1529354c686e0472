"""onnxruntime paths: cached fp32 export, static int8 quantisation, a thread-pinned session.

Why static int8 (QDQ, per-channel weights): dynamic quantisation turns convolutions into
``ConvInteger`` + float rescaling, which onnxruntime's CPU provider runs slower than fp32; static
quantisation with calibrated activation ranges lets the graph optimiser fuse each
``DequantizeLinear -> Conv -> QuantizeLinear`` into one ``QLinearConv`` (MLAS u8 x s8 kernels,
``vpmaddubsw`` on AVX2).  ``quant_pre_process`` runs first so that BatchNorm is folded into its
convolution and ReLU/ReLU6 disappear into the quantisation range instead of staying as float ops
between integer convolutions.

Exports and quantised files are cached by a hash of the weights and settings: converting FCN-8s
VGG16 (537 MB of weights) takes minutes on a 2-core machine and is not part of what is measured.
onnxruntime is imported lazily (optional dependency ``pixelwise[onnx]``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import PixelwiseError

#: activation/weight types and settings of the int8 path (recorded in results).  Kept in fp32,
#: measured on the CamVid model (argmax agreement with fp32 on val images 75% -> 99%): the first
#: convolution (it quantises the raw image and its error reaches every later layer; 3 input
#: channels make it cheap), the score layers (they decide the argmax; tiny) and depthwise
#: convolutions (BatchNorm folding leaves near-dead channels whose int32 bias overflows).
#: ``reduce_range``: 7-bit weights, because AVX2 without VNNI multiplies u8 x s8 with
#: ``vpmaddubsw``, whose int16 pair sums saturate with full 8-bit weights.
INT8_SETTINGS = {
    "format": "QDQ",
    "activations": "uint8",
    "weights": "int8 per-channel, 7-bit range",
    "calibration": "MinMax",
    "ops": ["Conv", "Relu", "Clip", "MaxPool"],
    "fp32_kept": ["first conv", "score layers", "depthwise convs"],
}


def weights_hash(model: nn.Module, extra: dict | None = None) -> str:
    """Short content hash of ``model``'s state dict and config (plus ``extra`` settings)."""
    h = hashlib.blake2b(digest_size=10)
    h.update(json.dumps({"config": model.config, **(extra or {})}, sort_keys=True, default=str).encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _require_ort():
    try:
        import onnxruntime  # noqa: F401
        import onnxruntime.quantization  # noqa: F401
    except ImportError:
        raise PixelwiseError("the onnxruntime backends need onnxruntime: pip install 'pixelwise[onnx]'") from None


#: Dense convolutions with kernels at least this large and at least this many input channels get
#: their zero padding as a separate ``Pad`` node in the fast path's export, and the session keeps it
#: (onnxruntime's ``Pad_Fusion`` rule, which would fold it back, is disabled).  MLAS's NCHWc kernels
#: compute the output pixels whose window crosses the border on a slower path; for FCN-8s VGG16 in
#: the aligned geometry, fc6 (7x7, pad 3, on a 16x16 map: 6 of 16 output columns and rows are
#: border) took 28% of onnxruntime's fp32 time for 24% of its FLOPs (per-node profile, 1 thread);
#: with the explicit Pad it takes 24.5%.  3x3 convolutions on large maps (few border pixels),
#: depthwise ones (a Pad would copy whole activations) and the 3-channel stems are left alone.
EXPLICIT_PAD_MIN_KERNEL = 5
EXPLICIT_PAD_MIN_CHANNELS = 16
#: graph optimisations the sessions leave out (see ``EXPLICIT_PAD_MIN_KERNEL``)
DISABLED_OPTIMIZERS = ["Pad_Fusion"]
#: bumped when what :func:`export_cached` writes changes, so older cached exports are not reused
EXPORT_VERSION = 2


def export_cached(model: nn.Module, cache_dir: str | Path, sample_size: tuple[int, int] = (64, 64)) -> Path:
    """fp32 ONNX file of ``model`` (dynamic N, H, W) in ``cache_dir``, with large-kernel padding
    made explicit (:func:`explicit_pads`); exported once per weights."""
    import onnx

    from ..atomic import atomic_path
    from ..interop.onnx_export import export_onnx

    _require_ort()
    cache_dir = Path(cache_dir)
    path = (
        cache_dir / f"{model.config.get('name', 'model')}-{weights_hash(model, {'export': EXPORT_VERSION})}-fp32.onnx"
    )
    if not path.is_file():
        raw = path.with_name(f"{path.name}.{os.getpid()}.raw")
        try:
            export_onnx(model, raw, sample_size=sample_size)
            proto = onnx.load(str(raw))
            explicit_pads(proto)
            with atomic_path(path) as tmp:
                onnx.save_model(proto, str(tmp))
        finally:
            raw.unlink(missing_ok=True)
    return path


def explicit_pads(proto) -> list[str]:
    """Move the zero padding of large dense convolutions (:data:`EXPLICIT_PAD_MIN_KERNEL`) of the
    ONNX ``proto`` into ``Pad`` nodes in front of them, in place; returns the convolutions' names.
    Same arithmetic: the convolution then sums over explicit zeros instead of skipping them."""
    import onnx
    from onnx import helper, numpy_helper

    shapes = {t.name: list(t.dims) for t in proto.graph.initializer}
    nodes, changed = [], []
    for node in proto.graph.node:
        pads = _movable_pads(node, shapes)
        if pads:
            top, left, bottom, right = pads
            amounts = f"{node.name}_explicit_pads"
            proto.graph.initializer.append(
                numpy_helper.from_array(np.array([0, 0, top, left, 0, 0, bottom, right], np.int64), amounts)
            )
            padded = f"{node.input[0]}_padded_for_{node.name}"
            nodes.append(helper.make_node("Pad", [node.input[0], amounts], [padded], name=f"{node.name}_pad"))
            node.input[0] = padded
            next(a for a in node.attribute if a.name == "pads").ints[:] = [0, 0, 0, 0]
            changed.append(node.name)
        nodes.append(node)
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    if changed:
        onnx.checker.check_model(proto)
    return changed


def _movable_pads(node, shapes: dict[str, list[int]]) -> list[int] | None:
    """The 2-D ``pads`` of ``node`` if it is a convolution whose padding should be a Pad node."""
    if node.op_type != "Conv":
        return None
    attrs = {a.name: a for a in node.attribute}
    kernel = list(attrs["kernel_shape"].ints) if "kernel_shape" in attrs else []
    pads = list(attrs["pads"].ints) if "pads" in attrs else []
    weight = shapes.get(node.input[1], [])  # O x I/group x kH x kW when the weight is a constant
    dense = (attrs["group"].i if "group" in attrs else 1) == 1
    explicit = "auto_pad" not in attrs or attrs["auto_pad"].s in (b"", b"NOTSET")
    large = len(kernel) == 2 and min(kernel) >= EXPLICIT_PAD_MIN_KERNEL
    wide = len(weight) == 4 and weight[1] >= EXPLICIT_PAD_MIN_CHANNELS
    return pads if (dense and explicit and large and wide and len(pads) == 4 and any(pads)) else None


def quantize_int8(fp32_path: Path, calibration: Sequence[np.ndarray], *, per_channel: bool = True) -> Path:
    """Static int8 QDQ copy of ``fp32_path`` calibrated on ``calibration`` inputs (each
    ``N x C x H x W`` float32, already preprocessed); cached beside the fp32 file."""
    _require_ort()
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    from ..interop.onnx_export import INPUT_NAME

    h = hashlib.blake2b(digest_size=8)
    for a in calibration:
        h.update(np.ascontiguousarray(a, np.float32).tobytes())
    h.update(json.dumps([INT8_SETTINGS, per_channel]).encode())
    out = fp32_path.with_name(fp32_path.name.replace("-fp32.onnx", f"-int8-{h.hexdigest()}.onnx"))
    if out.is_file():
        return out

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{INPUT_NAME: np.ascontiguousarray(a, np.float32)} for a in calibration])

        def get_next(self) -> dict | None:
            return next(self.items, None)

    pre = out.with_name(f"{out.name}.{os.getpid()}.pre.onnx")  # per process: two runs may fill one cache
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    try:
        # folds BatchNorm into convolutions and infers shapes, so Conv is what gets quantised
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(tmp),
            Reader(),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=INT8_SETTINGS["ops"],
            per_channel=per_channel,
            reduce_range=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=_kept_fp32(pre),
        )
        _copy_metadata(fp32_path, tmp)
        tmp.replace(out)
    finally:
        pre.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return out


def _kept_fp32(path: Path) -> list[str]:
    """Names of the convolutions left in fp32 (see ``INT8_SETTINGS``)."""
    import onnx

    convs = [n for n in onnx.load(str(path), load_external_data=False).graph.node if n.op_type == "Conv"]

    def group(n) -> int:
        return next((a.i for a in n.attribute if a.name == "group"), 1)

    kept = [c.name for c in convs[:1]]  # graph order is topological: the first conv sees the image
    kept += [c.name for c in convs[1:] if group(c) > 1 or "score" in c.input[1]]
    return kept


def _copy_metadata(src: Path, dst: Path) -> None:
    """Keep the ``pixelwise`` metadata (preprocessing, heads) in the quantised file, so
    ``pixelwise predict/eval --model FILE.onnx`` can use it like the fp32 export."""
    import onnx

    from ..interop.onnx_export import META_KEY

    meta = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
    if META_KEY not in meta:
        return
    proto = onnx.load(str(dst))
    if not any(p.key == META_KEY for p in proto.metadata_props):
        entry = proto.metadata_props.add()
        entry.key, entry.value = META_KEY, meta[META_KEY]
        onnx.save_model(proto, str(dst))


def session_options(threads: int):
    """``onnxruntime.SessionOptions``: ``threads`` intra-op threads, sequential, every optimisation
    level (sessions also pass ``disabled_optimizers=DISABLED_OPTIMIZERS``)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return opts


class OrtSession:
    """An onnxruntime CPU session with ``threads`` intra-op threads and every graph optimisation
    but :data:`DISABLED_OPTIMIZERS`.

    ``session(x)`` maps a float ``N x C x H x W`` tensor to the list of output tensors.
    """

    def __init__(self, path: str | Path, threads: int) -> None:
        _require_ort()
        import onnxruntime as ort

        self.path = Path(path)
        self.session = ort.InferenceSession(
            str(path),
            sess_options=session_options(threads),
            providers=["CPUExecutionProvider"],
            disabled_optimizers=DISABLED_OPTIMIZERS,
        )
        self.input = self.session.get_inputs()[0].name
        self.outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, x: torch.Tensor) -> list[torch.Tensor]:
        arr = np.ascontiguousarray(x.detach().cpu().float().numpy())
        return [torch.from_numpy(o) for o in self.session.run(self.outputs, {self.input: arr})]
