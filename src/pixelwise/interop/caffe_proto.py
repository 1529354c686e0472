"""The subset of Caffe's ``caffe.proto`` that FCN models need, built in Python -- no Caffe, no protoc.

The schema below lists only the messages and fields the FCN nets use; field numbers, types and
defaults are those of BVLC ``src/caffe/proto/caffe.proto`` (they are the wire format, so they must
match exactly; the OpenCV Caffe importer, which compiles the real file, checks them in the tests).
Everything else in a ``.caffemodel`` is kept by protobuf as unknown fields and ignored.

Both formats are covered: the current one (``NetParameter.layer``: ``LayerParameter`` with string
types, ``BlobProto.shape``) and the legacy one (``NetParameter.layers``: ``V1LayerParameter`` with
an enum type, blobs sized by ``num/channels/height/width``).

Besides parsing, :func:`write_caffemodel` serialises a net with weights in the real wire format:
layer parameters through protobuf, weight blobs streamed straight from numpy (packed little-endian
floats), so that multi-hundred-megabyte test nets are written in seconds.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any

import numpy as np

# --- schema -----------------------------------------------------------------------------------
# field = (name, number, type, label, default); type is a scalar name, a message name or
# "enum:<Enum>" (an enum nested in the same message); label "opt", "rep" or "packed".
Field = tuple[str, int, str, str, Any]

_PARAMS_V2 = [  # LayerParameter.<kind>_param numbers
    ("loss_param", 101, "LossParameter"),
    ("concat_param", 104, "ConcatParameter"),
    ("convolution_param", 106, "ConvolutionParameter"),
    ("dropout_param", 108, "DropoutParameter"),
    ("eltwise_param", 110, "EltwiseParameter"),
    ("inner_product_param", 117, "InnerProductParameter"),
    ("lrn_param", 118, "LRNParameter"),
    ("pooling_param", 121, "PoolingParameter"),
    ("relu_param", 123, "ReLUParameter"),
    ("softmax_param", 125, "SoftmaxParameter"),
    ("python_param", 130, "PythonParameter"),
    ("scale_param", 142, "ScaleParameter"),
    ("input_param", 143, "InputParameter"),
    ("crop_param", 144, "CropParameter"),
]
_PARAMS_V1 = [  # V1LayerParameter.<kind>_param numbers
    ("concat_param", 9, "ConcatParameter"),
    ("convolution_param", 10, "ConvolutionParameter"),
    ("dropout_param", 12, "DropoutParameter"),
    ("inner_product_param", 17, "InnerProductParameter"),
    ("lrn_param", 18, "LRNParameter"),
    ("pooling_param", 19, "PoolingParameter"),
    ("eltwise_param", 24, "EltwiseParameter"),
    ("relu_param", 30, "ReLUParameter"),
    ("softmax_param", 39, "SoftmaxParameter"),
    ("loss_param", 42, "LossParameter"),
]

#: V1LayerParameter.LayerType values -> the string type names of the current format
V1_TYPES = {
    0: "None",
    1: "Accuracy",
    2: "BNLL",
    3: "Concat",
    4: "Convolution",
    5: "Data",
    6: "Dropout",
    7: "EuclideanLoss",
    8: "Flatten",
    9: "HDF5Data",
    10: "HDF5Output",
    11: "Im2col",
    12: "ImageData",
    13: "InfogainLoss",
    14: "InnerProduct",
    15: "LRN",
    16: "MultinomialLogisticLoss",
    17: "Pooling",
    18: "ReLU",
    19: "Sigmoid",
    20: "Softmax",
    21: "SoftmaxWithLoss",
    22: "Split",
    23: "TanH",
    24: "WindowData",
    25: "Eltwise",
    26: "Power",
    27: "SigmoidCrossEntropyLoss",
    28: "HingeLoss",
    29: "MemoryData",
    30: "ArgMax",
    31: "Threshold",
    32: "DummyData",
    33: "Slice",
    34: "MVN",
    35: "AbsVal",
    36: "Silence",
    37: "ContrastiveLoss",
    38: "Exp",
    39: "Deconvolution",
}
_V1_ENUM_NAMES = {
    "NONE": 0,
    "ACCURACY": 1,
    "BNLL": 2,
    "CONCAT": 3,
    "CONVOLUTION": 4,
    "DATA": 5,
    "DROPOUT": 6,
    "EUCLIDEAN_LOSS": 7,
    "FLATTEN": 8,
    "HDF5_DATA": 9,
    "HDF5_OUTPUT": 10,
    "IM2COL": 11,
    "IMAGE_DATA": 12,
    "INFOGAIN_LOSS": 13,
    "INNER_PRODUCT": 14,
    "LRN": 15,
    "MULTINOMIAL_LOGISTIC_LOSS": 16,
    "POOLING": 17,
    "RELU": 18,
    "SIGMOID": 19,
    "SOFTMAX": 20,
    "SOFTMAX_LOSS": 21,
    "SPLIT": 22,
    "TANH": 23,
    "WINDOW_DATA": 24,
    "ELTWISE": 25,
    "POWER": 26,
    "SIGMOID_CROSS_ENTROPY_LOSS": 27,
    "HINGE_LOSS": 28,
    "MEMORY_DATA": 29,
    "ARGMAX": 30,
    "THRESHOLD": 31,
    "DUMMY_DATA": 32,
    "SLICE": 33,
    "MVN": 34,
    "ABSVAL": 35,
    "SILENCE": 36,
    "CONTRASTIVE_LOSS": 37,
    "EXP": 38,
    "DECONVOLUTION": 39,
}

ENUMS: dict[str, dict[str, dict[str, int]]] = {  # message -> enum -> values
    "NetStateRule": {"Phase": {"TRAIN": 0, "TEST": 1}},
    "PoolingParameter": {"PoolMethod": {"MAX": 0, "AVE": 1, "STOCHASTIC": 2}, "RoundMode": {"CEIL": 0, "FLOOR": 1}},
    "EltwiseParameter": {"EltwiseOp": {"PROD": 0, "SUM": 1, "MAX": 2}},
    "LRNParameter": {"NormRegion": {"ACROSS_CHANNELS": 0, "WITHIN_CHANNEL": 1}},
    "V1LayerParameter": {"LayerType": _V1_ENUM_NAMES},
}

SCHEMA: dict[str, list[Field]] = {
    "BlobShape": [("dim", 1, "int64", "packed", None)],
    "BlobProto": [
        ("num", 1, "int64", "opt", 0),
        ("channels", 2, "int64", "opt", 0),
        ("height", 3, "int64", "opt", 0),
        ("width", 4, "int64", "opt", 0),
        ("data", 5, "float", "packed", None),
        ("shape", 7, "BlobShape", "opt", None),
        ("double_data", 8, "double", "packed", None),
    ],
    "NetParameter": [
        ("name", 1, "string", "opt", None),
        ("layers", 2, "V1LayerParameter", "rep", None),
        ("input", 3, "string", "rep", None),
        ("input_dim", 4, "int64", "rep", None),
        ("input_shape", 8, "BlobShape", "rep", None),
        ("layer", 100, "LayerParameter", "rep", None),
    ],
    "NetStateRule": [("phase", 1, "enum:Phase", "opt", None)],
    "ParamSpec": [
        ("name", 1, "string", "opt", None),
        ("lr_mult", 3, "float", "opt", 1.0),
        ("decay_mult", 4, "float", "opt", 1.0),
    ],
    "FillerParameter": [("type", 1, "string", "opt", "constant"), ("value", 2, "float", "opt", 0.0)],
    "LayerParameter": [
        ("name", 1, "string", "opt", None),
        ("type", 2, "string", "opt", None),
        ("bottom", 3, "string", "rep", None),
        ("top", 4, "string", "rep", None),
        ("param", 6, "ParamSpec", "rep", None),
        ("blobs", 7, "BlobProto", "rep", None),
        ("include", 8, "NetStateRule", "rep", None),
        ("exclude", 9, "NetStateRule", "rep", None),
    ]
    + [(n, num, t, "opt", None) for n, num, t in _PARAMS_V2],
    "V1LayerParameter": [
        ("bottom", 2, "string", "rep", None),
        ("top", 3, "string", "rep", None),
        ("name", 4, "string", "opt", None),
        ("type", 5, "enum:LayerType", "opt", None),
        ("blobs", 6, "BlobProto", "rep", None),
        ("include", 32, "NetStateRule", "rep", None),
        ("exclude", 33, "NetStateRule", "rep", None),
    ]
    + [(n, num, t, "opt", None) for n, num, t in _PARAMS_V1],
    "ConvolutionParameter": [
        ("num_output", 1, "uint32", "opt", None),
        ("bias_term", 2, "bool", "opt", True),
        ("pad", 3, "uint32", "rep", None),
        ("kernel_size", 4, "uint32", "rep", None),
        ("group", 5, "uint32", "opt", 1),
        ("stride", 6, "uint32", "rep", None),
        ("weight_filler", 7, "FillerParameter", "opt", None),
        ("bias_filler", 8, "FillerParameter", "opt", None),
        ("pad_h", 9, "uint32", "opt", 0),
        ("pad_w", 10, "uint32", "opt", 0),
        ("kernel_h", 11, "uint32", "opt", None),
        ("kernel_w", 12, "uint32", "opt", None),
        ("stride_h", 13, "uint32", "opt", None),
        ("stride_w", 14, "uint32", "opt", None),
        ("axis", 16, "int32", "opt", 1),
        ("dilation", 18, "uint32", "rep", None),
    ],
    "PoolingParameter": [
        ("pool", 1, "enum:PoolMethod", "opt", "MAX"),
        ("kernel_size", 2, "uint32", "opt", None),
        ("stride", 3, "uint32", "opt", 1),
        ("pad", 4, "uint32", "opt", 0),
        ("kernel_h", 5, "uint32", "opt", None),
        ("kernel_w", 6, "uint32", "opt", None),
        ("stride_h", 7, "uint32", "opt", None),
        ("stride_w", 8, "uint32", "opt", None),
        ("pad_h", 9, "uint32", "opt", 0),
        ("pad_w", 10, "uint32", "opt", 0),
        ("global_pooling", 12, "bool", "opt", False),
        ("round_mode", 13, "enum:RoundMode", "opt", "CEIL"),
    ],
    "LRNParameter": [
        ("local_size", 1, "uint32", "opt", 5),
        ("alpha", 2, "float", "opt", 1.0),
        ("beta", 3, "float", "opt", 0.75),
        ("norm_region", 4, "enum:NormRegion", "opt", "ACROSS_CHANNELS"),
        ("k", 5, "float", "opt", 1.0),
    ],
    "CropParameter": [("axis", 1, "int32", "opt", 2), ("offset", 2, "uint32", "rep", None)],
    "EltwiseParameter": [("operation", 1, "enum:EltwiseOp", "opt", "SUM"), ("coeff", 2, "float", "rep", None)],
    "ScaleParameter": [
        ("axis", 1, "int32", "opt", 1),
        ("num_axes", 2, "int32", "opt", 1),
        ("filler", 3, "FillerParameter", "opt", None),
        ("bias_term", 4, "bool", "opt", False),
    ],
    "ConcatParameter": [("concat_dim", 1, "uint32", "opt", 1), ("axis", 2, "int32", "opt", 1)],
    "DropoutParameter": [("dropout_ratio", 1, "float", "opt", 0.5)],
    "ReLUParameter": [("negative_slope", 1, "float", "opt", 0.0)],
    "SoftmaxParameter": [("axis", 2, "int32", "opt", 1)],
    "InnerProductParameter": [
        ("num_output", 1, "uint32", "opt", None),
        ("bias_term", 2, "bool", "opt", True),
        ("axis", 5, "int32", "opt", 1),
        ("transpose", 6, "bool", "opt", False),
    ],
    "InputParameter": [("shape", 1, "BlobShape", "rep", None)],
    "PythonParameter": [
        ("module", 1, "string", "opt", None),
        ("layer", 2, "string", "opt", None),
        ("param_str", 3, "string", "opt", ""),
    ],
    "LossParameter": [("ignore_label", 1, "int64", "opt", None), ("normalize", 2, "bool", "opt", None)],
}

_SCALARS = {
    "double": 1,
    "float": 2,
    "int64": 3,
    "uint64": 4,
    "int32": 5,
    "bool": 8,
    "string": 9,
    "bytes": 12,
    "uint32": 13,
}  # FieldDescriptorProto.Type values


def _default_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@functools.cache
def message_classes() -> dict[str, type]:
    """Message name -> generated protobuf class (built once, in a private descriptor pool)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="pixelwise_caffe.proto", package="caffe", syntax="proto2")
    for msg_name, fields in SCHEMA.items():
        msg = fdp.message_type.add(name=msg_name)
        for enum_name, values in ENUMS.get(msg_name, {}).items():
            enum = msg.enum_type.add(name=enum_name)
            for value_name, number in sorted(values.items(), key=lambda kv: kv[1]):
                enum.value.add(name=value_name, number=number)
        for name, number, typ, label, default in fields:
            f = msg.field.add(name=name, number=number)
            f.label = F.LABEL_OPTIONAL if label == "opt" else F.LABEL_REPEATED
            if typ in _SCALARS:
                f.type = _SCALARS[typ]
            elif typ.startswith("enum:"):
                f.type, f.type_name = F.TYPE_ENUM, f".caffe.{msg_name}.{typ[5:]}"
            else:
                f.type, f.type_name = F.TYPE_MESSAGE, f".caffe.{typ}"
            if label == "packed":
                f.options.packed = True
            if default is not None:
                f.default_value = _default_text(default)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"caffe.{name}")) for name in SCHEMA}


def new_message(message: str, /, **fields: Any) -> Any:
    """A fresh message of schema type ``message`` (e.g. ``"NetParameter"``)."""
    return message_classes()[message](**fields)


def parse_prototxt(text: str) -> Any:
    """Parse a ``.prototxt`` (protobuf text format) into a ``NetParameter``.

    Fields outside this schema (data-layer settings, loss options, ...) are skipped, not errors.
    Raises ``google.protobuf.text_format.ParseError`` on malformed text.
    """
    from google.protobuf import text_format

    net = new_message("NetParameter")
    text_format.Parse(text, net, allow_unknown_field=True)
    return net


def to_prototxt(net: Any) -> str:
    """A ``NetParameter`` (blobs are dropped) -> protobuf text format, as Caffe writes it."""
    from google.protobuf import text_format

    net = type(net).FromString(net.SerializeToString())
    for layer in list(net.layer) + list(net.layers):
        del layer.blobs[:]
    return text_format.MessageToString(net)


# --- writer ------------------------------------------------------------------------------------
def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # two's complement, as protobuf encodes negative int64
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _len_field(number: int, payload_len: int) -> bytes:
    return _varint(number << 3 | 2) + _varint(payload_len)


def encode_blob(array: np.ndarray, legacy: bool = False) -> tuple[bytes, memoryview]:
    """One ``BlobProto``: (header bytes, float payload).  ``legacy`` writes num/channels/height/width
    (shapes are right-aligned into 4 axes, as old Caffe did) instead of ``shape``."""
    a = np.ascontiguousarray(array, dtype="<f4")
    if legacy:
        dims = (1,) * (4 - a.ndim) + a.shape
        if len(dims) != 4:
            raise ValueError(f"legacy blobs have at most 4 axes, got {a.shape}")
        head = b"".join(_varint(n << 3) + _varint(d) for n, d in zip((1, 2, 3, 4), dims, strict=False))
    else:
        dims_payload = b"".join(_varint(d) for d in a.shape)
        shape = _len_field(1, len(dims_payload)) + dims_payload if a.shape else b""
        head = _len_field(7, len(shape)) + shape
    payload = memoryview(a.reshape(-1)).cast("B")
    return head + _len_field(5, payload.nbytes), payload


def write_caffemodel(out: IO[bytes], net: Any, blobs: Mapping[str, Sequence[np.ndarray]], legacy: bool = False) -> None:
    """Serialise ``net`` (a ``NetParameter`` whose layers carry no blobs) with ``blobs[layer name]``.

    ``legacy=True`` writes the V1 format: ``layers`` (field 2) of ``V1LayerParameter`` (blobs field
    6) -- ``net`` must then use ``net.layers``.  Each layer message is serialised by protobuf, its
    blobs appended as further occurrences of the repeated ``blobs`` field (protobuf merges them).
    """
    out.write(net.__class__(name=net.name).SerializeToString() if net.name else b"")
    for field in ("input", "input_dim", "input_shape"):
        if len(getattr(net, field)):
            part = net.__class__()
            getattr(part, field).extend(getattr(net, field))
            out.write(part.SerializeToString())
    layers, net_field, blob_field = (net.layers, 2, 6) if legacy else (net.layer, 100, 7)
    for layer in layers:
        params = layer.SerializeToString()
        encoded = [encode_blob(b, legacy) for b in blobs.get(layer.name, ())]
        parts: list[Iterable] = [params]
        size = len(params)
        for head, payload in encoded:
            blob_len = len(head) + payload.nbytes
            prefix = _len_field(blob_field, blob_len)
            parts += [prefix, head, payload]
            size += len(prefix) + blob_len
        out.write(_len_field(net_field, size))
        for p in parts:
            out.write(p)
