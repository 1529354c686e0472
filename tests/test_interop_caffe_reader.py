"""The .caffemodel reader: wire-format round trips, legacy blobs, and bad input (errors + fuzz)."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from caffe_nets import NetBuilder

from pixelwise.errors import PixelwiseError
from pixelwise.interop.caffe import parse_caffemodel, read_caffemodel
from pixelwise.interop.caffe_proto import encode_blob, new_message, write_caffemodel


def _small_model(legacy: bool = False) -> bytes:
    n = NetBuilder("small", seed=2, legacy=legacy)
    d = n.input("data", (1, 3, 8, 8))
    x = n.relu("relu1", n.conv("conv1", d, 4, 3, pad=100))
    x = n.pool("pool1", x, 2, 2)
    n.deconv("up", n.conv("score", x, 2, 1), 2, 4, 2)
    out = io.BytesIO()
    write_caffemodel(out, n.net, n.blobs, legacy=legacy)
    return out.getvalue()


def test_writer_output_is_what_protobuf_writes():
    """Our streamed blob encoding parses (protobuf) to the same BlobProto protobuf writes (field order
    aside: protobuf writes by field number, we write the header first)."""
    cls = type(new_message("BlobProto"))
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 7.5
    head, payload = encode_blob(a)
    ref = new_message("BlobProto", shape=new_message("BlobShape", dim=a.shape), data=a.ravel().tolist())
    assert cls.FromString(head + bytes(payload)) == ref
    assert len(head) + payload.nbytes == len(ref.SerializeToString())
    head, payload = encode_blob(a.reshape(6, 4), legacy=True)
    ref = new_message("BlobProto", num=1, channels=1, height=6, width=4, data=a.ravel().tolist())
    assert cls.FromString(head + bytes(payload)) == ref


@pytest.mark.parametrize("legacy", [False, True])
def test_round_trip_keeps_names_types_and_weights(legacy):
    net = parse_caffemodel(_small_model(legacy))
    assert net.legacy is legacy
    assert [ly.name for ly in net.layers if ly.blobs] == ["conv1", "score", "up"]
    conv = net.layer("conv1")
    assert (
        conv.type == "Convolution" and conv.blobs[0].shape == (4, 3, 3, 3) and conv.blobs[1].shape == (4,)
        if not legacy
        else conv.blobs[1].shape == (1, 1, 1, 4)
    )
    assert net.layer("up").type == "Deconvolution"


def test_double_data_blobs_are_read():
    blob = new_message("BlobProto", shape=new_message("BlobShape", dim=[2]), double_data=[1.5, -2.0])
    layer = new_message("LayerParameter", name="s", type="Scale", blobs=[blob])
    net = parse_caffemodel(new_message("NetParameter", layer=[layer]).SerializeToString())
    assert net.layer("s").blobs[0].tolist() == [1.5, -2.0]


@pytest.mark.parametrize(
    "data, match",
    [
        (b"", "empty file"),
        (b"\x0a\x03abc", "no layers found"),  # only a net name
        (b"\xa2\x06\xff\xff\xff\x7f", "truncated"),  # layer (field 100) declaring ~256 MiB in a 6-byte file
    ],
)
def test_bad_bytes_are_one_line_errors(data, match):
    with pytest.raises(PixelwiseError, match=match) as e:
        parse_caffemodel(data, "x.caffemodel")
    assert "\n" not in str(e.value)


def test_truncated_file_names_the_layer(tmp_path):
    data = _small_model()
    path = tmp_path / "cut.caffemodel"
    path.write_bytes(data[: len(data) - 10])
    with pytest.raises(PixelwiseError, match=r"cut.caffemodel.*(truncated|corrupt)"):
        read_caffemodel(path)


def test_blob_shape_must_match_its_data():
    blob = new_message("BlobProto", shape=new_message("BlobShape", dim=[10**12, 10**12]), data=[1.0, 2.0])
    layer = new_message("LayerParameter", name="conv9", type="Convolution", blobs=[blob])
    with pytest.raises(PixelwiseError, match=r"layer 'conv9' blobs\[0\]: field 'shape'"):
        parse_caffemodel(new_message("NetParameter", layer=[layer]).SerializeToString())


def test_missing_file(tmp_path):
    with pytest.raises(PixelwiseError, match="cannot read Caffe model"):
        read_caffemodel(tmp_path / "nope.caffemodel")


def _mutations(data: bytes, rng: np.random.Generator, count: int):
    for i in range(count):
        b = bytearray(data)
        kind = i % 4
        if kind == 0:  # flip bytes
            for pos in rng.integers(0, len(b), size=int(rng.integers(1, 8))):
                b[pos] = int(rng.integers(256))
        elif kind == 1:  # truncate
            b = b[: int(rng.integers(1, len(b)))]
        elif kind == 2:  # a huge declared length somewhere
            pos = int(rng.integers(0, len(b) - 5))
            b[pos : pos + 5] = b"\xff\xff\xff\xff\x0f"
        else:  # random bytes
            b = bytearray(rng.integers(0, 256, size=int(rng.integers(1, 300)), dtype=np.uint8).tobytes())
        yield bytes(b)


@pytest.mark.parametrize("legacy", [False, True])
def test_fuzz_reader_fails_only_with_pixelwise_errors(legacy):
    """Random and mutated files: a PixelwiseError or a parsed net -- no other exception, no hang, and
    no allocation beyond the file (declared lengths are checked against what is there)."""
    data = _small_model(legacy)
    rng = np.random.default_rng(1234)
    start = time.monotonic()
    outcomes = {"ok": 0, "error": 0}
    for mutated in _mutations(data, rng, 400):
        try:
            net = parse_caffemodel(mutated, "fuzz.caffemodel")
        except PixelwiseError as e:
            assert "\n" not in str(e)
            outcomes["error"] += 1
            continue
        outcomes["ok"] += 1
        total = sum(b.nbytes for layer in net.layers for b in layer.blobs)
        assert total <= 4 * len(mutated)  # float32 values cannot outnumber the bytes holding them
        for layer in net.layers:  # every parsed field is usable text / numbers
            assert isinstance(layer.name, str) and isinstance(layer.type, str)
    assert time.monotonic() - start < 30
    assert outcomes["error"] > 50
