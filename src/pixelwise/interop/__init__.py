"""Interoperability: Caffe import (no Caffe needed) and ONNX export/runtime.

Optional dependencies (protobuf, onnx, onnxruntime) are imported inside the functions that need
them, so importing this package costs nothing.
"""
