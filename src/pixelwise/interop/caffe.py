"""Read Caffe ``.caffemodel`` / ``.prototxt`` files without Caffe.

:func:`read_caffemodel` (and :func:`read_caffe`, which also takes a weights-only file with its
``.prototxt``) returns a :class:`CaffeNet`: the layers in file order, each with its
string type (legacy V1 enum types are translated), bottoms/tops, parameters and weight blobs as
float32 numpy arrays in Caffe layout (convolution ``O x I/g x kh x kw``, deconvolution
``I x O/g x kh x kw``, inner product ``O x I``).

Every problem with a file is a one-line :class:`~pixelwise.errors.PixelwiseError` naming the file
and, where it can be told, the layer and field -- never a protobuf traceback.  Reading is bounded:
protobuf rejects any declared length beyond the end of the file, and blob shapes must account
exactly for the values present, so a corrupt header cannot make the reader allocate more than the
file holds.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PixelwiseError

#: the largest file we accept: protobuf's own 2 GiB message limit
MAX_FILE_BYTES = 2**31 - 1


@dataclasses.dataclass
class CaffeLayer:
    """One layer: ``name``, string ``type``, blob names, weight ``blobs`` and the raw ``param``
    message (``LayerParameter`` or ``V1LayerParameter``; read ``param.convolution_param`` etc.)."""

    name: str
    type: str
    bottom: list[str]
    top: list[str]
    blobs: list[np.ndarray]
    param: Any
    phase_rules: tuple[tuple[str, int], ...] = ()  # ("include"|"exclude", phase)

    def in_phase(self, phase: int) -> bool:
        """Whether the layer exists in Caffe phase ``phase`` (0 TRAIN, 1 TEST)."""
        inc = [p for kind, p in self.phase_rules if kind == "include"]
        exc = [p for kind, p in self.phase_rules if kind == "exclude"]
        return (not inc or phase in inc) and phase not in exc


@dataclasses.dataclass
class CaffeNet:
    """A parsed net: ``name``, ``layers`` in file order, declared ``inputs`` (name -> shape or None),
    ``legacy`` (the file used V1 ``layers``) and ``source`` (for error messages)."""

    name: str
    layers: list[CaffeLayer]
    inputs: dict[str, tuple[int, ...] | None]
    legacy: bool
    source: str

    def layer(self, name: str) -> CaffeLayer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise PixelwiseError(f"{self.source}: no layer '{name}' (layers: {_summary(self.layer_names())})")

    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def weights(self) -> dict[str, list[np.ndarray]]:
        """Layer name -> blobs, for layers that have any."""
        return {layer.name: layer.blobs for layer in self.layers if layer.blobs}


def _summary(names: list[str], n: int = 8) -> str:
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "") if names else "none"


def read_caffemodel(path: str | Path) -> CaffeNet:
    """Parse a binary ``.caffemodel`` (current or legacy format) into a :class:`CaffeNet`."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise PixelwiseError(f"{path}: {size} bytes is over protobuf's 2 GiB limit for one message")
        data = path.read_bytes()
    except OSError as e:
        raise PixelwiseError(f"cannot read Caffe model {path}: {e.strerror or e}") from None
    return parse_caffemodel(data, str(path))


def read_caffe(caffemodel: str | Path, prototxt: str | Path | None = None) -> CaffeNet:
    """A net with its weights: a full ``.caffemodel``, or a weights-only one with its ``prototxt``.

    With ``prototxt`` the layers (types, parameters, connections) come from the text definition and
    each takes the blobs of the same-named layer of ``caffemodel`` -- what Caffe's
    ``CopyTrainedLayersFrom`` and OpenCV's ``readNetFromCaffe(prototxt, caffemodel)`` do.
    """
    weights = read_caffemodel(caffemodel)
    if prototxt is not None:
        return with_weights(read_prototxt(prototxt), weights)
    bare = [layer.name for layer in weights.layers if layer.blobs and layer.type in ("", "None")]
    if bare:
        raise PixelwiseError(
            f"{weights.source}: layer '{bare[0]}' has weights but no type -- a weights-only "
            f"file: pass its net definition with --prototxt NET.prototxt"
        )
    return weights


def with_weights(definition: CaffeNet, weights: CaffeNet) -> CaffeNet:
    """The layers of ``definition`` (a prototxt) with the blobs of ``weights``' same-named layers.

    Every layer with weights must exist in the definition: a blob left over means the two files
    describe different nets.
    """
    blobs = {layer.name: layer.blobs for layer in weights.layers if layer.blobs}
    defined = set(definition.layer_names())
    unknown = [name for name in blobs if name not in defined]
    if unknown:
        raise PixelwiseError(
            f"{weights.source}: layer '{unknown[0]}' has weights but {definition.source} "
            f"defines no such layer -- is this the net definition of these weights?"
        )
    layers = [dataclasses.replace(layer, blobs=blobs.get(layer.name, layer.blobs)) for layer in definition.layers]
    return CaffeNet(
        definition.name or weights.name,
        layers,
        definition.inputs,
        definition.legacy,
        f"{weights.source} (net {Path(definition.source).name})",
    )


def parse_caffemodel(data: bytes, source: str = "<bytes>") -> CaffeNet:
    """Parse ``.caffemodel`` bytes; ``source`` names the file in errors."""
    from google.protobuf.message import DecodeError

    from .caffe_proto import new_message

    if not data:
        raise PixelwiseError(f"{source}: empty file, not a Caffe model")
    net = new_message("NetParameter")
    try:
        net.ParseFromString(data)
    except (DecodeError, RecursionError, ValueError, OverflowError):
        raise PixelwiseError(f"{source}: not a valid Caffe model ({locate_corruption(data)})") from None
    return _from_message(net, source, binary=True)


def read_prototxt(path: str | Path) -> CaffeNet:
    """Parse a text ``.prototxt`` net definition (no weights) into a :class:`CaffeNet`."""
    from google.protobuf import text_format

    from .caffe_proto import parse_prototxt

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise PixelwiseError(f"cannot read prototxt {path}: {e}") from None
    try:
        net = parse_prototxt(text)
    except text_format.ParseError as e:
        raise PixelwiseError(f"{path}: malformed prototxt: {e}") from None
    return _from_message(net, str(path), binary=False)


def _from_message(net: Any, source: str, binary: bool) -> CaffeNet:
    if len(net.layer) and len(net.layers):
        raise PixelwiseError(f"{source}: mixes current 'layer' and legacy 'layers' fields")
    legacy = bool(len(net.layers))
    raw = net.layers if legacy else net.layer
    if binary and not len(raw):
        raise PixelwiseError(f"{source}: no layers found -- not a Caffe model (or an empty net)")
    from .caffe_proto import V1_TYPES

    layers = []
    for i, msg in enumerate(raw):
        where = f"{source}: layer #{i}"
        name = _text(msg.name, f"{where} field 'name'") or f"#{i}"
        where = f"{source}: layer '{name}'"
        typ = V1_TYPES.get(msg.type, f"V1:{msg.type}") if legacy else _text(msg.type, f"{where} field 'type'")
        bottom = [_text(b, f"{where} field 'bottom'") for b in msg.bottom]
        top = [_text(t, f"{where} field 'top'") for t in msg.top]
        blobs = [_blob_array(b, f"{where} blobs[{j}]") for j, b in enumerate(msg.blobs)]
        rules = tuple(("include", r.phase) for r in msg.include if r.HasField("phase")) + tuple(
            ("exclude", r.phase) for r in msg.exclude if r.HasField("phase")
        )
        layers.append(CaffeLayer(name, typ, bottom, top, blobs, msg, rules))
    inputs = {_text(k, f"{source}: field 'input'"): v for k, v in _inputs(net, source).items()}
    return CaffeNet(_text(net.name, f"{source}: field 'name'"), layers, inputs, legacy, source)


def _text(value: str | bytes, where: str) -> str:
    """A string field; protobuf hands back ``bytes`` when a proto2 string is not valid UTF-8."""
    if isinstance(value, bytes):
        raise PixelwiseError(f"{where} is not valid UTF-8 text (corrupt file?)")
    return value


def _inputs(net: Any, source: str) -> dict[str, tuple[int, ...] | None]:
    """Deprecated net-level inputs (``input`` + ``input_shape``/``input_dim``)."""
    names = list(net.input)
    shapes: list[tuple[int, ...] | None] = [tuple(s.dim) for s in net.input_shape]
    if not shapes and len(net.input_dim):
        dims = list(net.input_dim)
        if len(dims) != 4 * len(names):
            raise PixelwiseError(f"{source}: field 'input_dim' needs 4 values per input, got {len(dims)}")
        shapes = [tuple(dims[4 * i : 4 * i + 4]) for i in range(len(names))]
    shapes += [None] * (len(names) - len(shapes))
    return dict(zip(names, shapes, strict=False))


def _blob_array(blob: Any, where: str) -> np.ndarray:
    """``BlobProto`` -> float32 array; the shape must account for exactly the values present."""
    if blob.HasField("shape"):
        shape = tuple(blob.shape.dim)
    else:  # legacy 4-D header; Caffe reads 1 x 1 x O x I inner products as O x I
        shape = (blob.num, blob.channels, blob.height, blob.width)
    if any(d < 0 for d in shape):
        raise PixelwiseError(f"{where}: field 'shape' has a negative dimension {shape}")
    n_float, n_double = len(blob.data), len(blob.double_data)
    count = n_float or n_double
    if n_float and n_double:
        raise PixelwiseError(f"{where}: has both 'data' and 'double_data'")
    if math.prod(shape) != count:  # exact Python ints: a huge declared shape cannot allocate anything
        raise PixelwiseError(
            f"{where}: field 'shape' {shape} needs {math.prod(shape)} values, field "
            f"'{'double_data' if n_double else 'data'}' has {count}"
        )
    values = blob.data if n_float else blob.double_data
    return np.asarray(values, dtype=np.float32).reshape(shape)


# --- locating corruption -----------------------------------------------------------------------
def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise EOFError
        b = data[pos]
        result |= (b & 0x7F) << shift
        pos += 1
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


_TOP_FIELDS = {1: "name", 2: "layers", 3: "input", 4: "input_dim", 8: "input_shape", 100: "layer"}


def locate_corruption(data: bytes) -> str:
    """Walk the top-level NetParameter fields to say where parsing fails: the field, the layer
    index and (if its name could be read) the layer name.  Used for error messages only."""
    from google.protobuf.message import DecodeError

    from .caffe_proto import new_message

    pos, index = 0, {2: 0, 100: 0}
    while pos < len(data):
        start, key = pos, 0
        try:
            key, pos = _read_varint(data, pos)
            number, wire = key >> 3, key & 7
            if wire == 2:
                length, pos = _read_varint(data, pos)
                if pos + length > len(data):
                    raise EOFError
                payload, pos = data[pos : pos + length], pos + length
            elif wire == 0:
                _, pos = _read_varint(data, pos)
                payload = None
            elif wire in (1, 5):
                pos += 8 if wire == 1 else 4
                if pos > len(data):
                    raise EOFError
                payload = None
            else:
                return f"bad wire type {wire} at byte {start}"
        except EOFError:
            return f"truncated at byte {start} of {len(data)}, in field '{_TOP_FIELDS.get(key >> 3, '?')}'"
        except ValueError as e:
            return f"{e} at byte {start}"
        if number in index and payload is not None:
            i = index[number]
            index[number] += 1
            msg = new_message("V1LayerParameter" if number == 2 else "LayerParameter")
            try:
                msg.ParseFromString(payload)
            except DecodeError:
                name = _peek_name(payload, 4 if number == 2 else 1)
                return f"field '{_TOP_FIELDS[number]}' #{i}{f' (layer {name!r})' if name else ''} is corrupt"
    return "corrupt protobuf data"


def _peek_name(payload: bytes, field: int) -> str | None:
    """The first string field ``field`` of a layer payload, if readable."""
    pos = 0
    try:
        while pos < len(payload):
            key, pos = _read_varint(payload, pos)
            wire = key & 7
            if wire == 2:
                length, pos = _read_varint(payload, pos)
                if key >> 3 == field:
                    return payload[pos : pos + length].decode("utf-8", "replace")[:80]
                pos += length
            elif wire == 0:
                _, pos = _read_varint(payload, pos)
            elif wire in (1, 5):
                pos += 8 if wire == 1 else 4
            else:
                return None
    except (EOFError, ValueError):
        return None
    return None
