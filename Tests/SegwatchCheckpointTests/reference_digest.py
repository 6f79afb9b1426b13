#!/usr/bin/env python3
"""Independent reference for the checkpoint-reader tests: reads every tensor of the fixture
checkpoints with Python's own pickle machine (a restricted Unpickler, no torch), zipfile,
json and numpy, and prints per-file digests as JSON:

    python3 reference_digest.py ../../../shared/fixtures > checkpoint_digests.json

For each file: the tensor count; the sha256 of the sorted lines "name dtype [shape]"; and
three float64 sums over all tensors' values (converted to float32 first, as segwatch loads
them), taken in sorted-name order, each value in row-major order: plain, absolute, and
weighted by ((i mod 13) + 1) * (tensor rank in sorted order + 1), so that a wrong stride,
offset, shared storage or dtype changes it.
"""
import hashlib
import json
import pickle
import struct
import sys
import zipfile

import numpy as np

DT = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
      "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}
STORAGE = {"FloatStorage": "float32", "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
           "LongStorage": "int64", "IntStorage": "int32", "BoolStorage": "bool"}


def to_f32(raw, dtype):
    if dtype == "bfloat16":
        return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    if dtype == "bool":
        return np.frombuffer(raw, dtype=np.uint8).astype(np.float32)
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(np.float32)


def read_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = (DT[info["dtype"]], to_f32(data[base + b:base + e], DT[info["dtype"]]).reshape(info["shape"]))
    return out


class OrderedDict(dict):
    """Has a __dict__, so pickle's BUILD can set `_metadata` on it."""


class StorageType:
    def __init__(self, dtype):
        self.dtype = dtype


def rebuild_tensor_v2(storage, offset, size, stride, *rest):
    dtype, flat = storage
    item = flat.itemsize
    view = np.lib.stride_tricks.as_strided(flat[offset:], shape=size, strides=[s * item for s in stride])
    return (dtype, np.array(view))


def read_torch(path):
    z = zipfile.ZipFile(path)
    pkl = [n for n in z.namelist() if n.endswith("data.pkl")][0]
    folder = pkl[: -len("data.pkl")]

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("collections", "OrderedDict"):
                return OrderedDict
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return rebuild_tensor_v2
            if (module, name) == ("torch._utils", "_rebuild_parameter"):
                return lambda data, *rest: data
            if module == "torch" and name in STORAGE:
                return StorageType(STORAGE[name])
            raise pickle.UnpicklingError(f"forbidden {module}.{name}")

        def persistent_load(self, pid):
            _, storage_type, key, _, numel = pid
            raw = z.read(folder + "data/" + key)
            flat = to_f32(raw, storage_type.dtype)[:numel]
            return (storage_type.dtype, flat)

    state = Unpickler(z.open(pkl)).load()
    return {k: v for k, v in state.items() if isinstance(v, tuple)}


def digest(tensors):
    names = sorted(tensors)
    lines = "".join(f"{n} {tensors[n][0]} {list(tensors[n][1].shape)}\n" for n in names)
    total = absolute = weighted = 0.0
    for rank, n in enumerate(names):
        v = tensors[n][1].astype(np.float64).ravel()
        w = (np.arange(v.size) % 13 + 1).astype(np.float64) * (rank + 1)
        total += float(v.sum())
        absolute += float(np.abs(v).sum())
        weighted += float((v * w).sum())
    return {"count": len(names), "names_sha256": hashlib.sha256(lines.encode()).hexdigest(),
            "sum": total, "abs_sum": absolute, "weighted_sum": weighted}


if __name__ == "__main__":
    root = sys.argv[1].rstrip("/")
    files = ["mobile_sam/mobile_sam.pt", "sam_vit/sam_vit_tiny.pth", "clip_hf/model.safetensors",
             "clip_hf/pytorch_model.bin", "open_clip/open_clip_model.safetensors",
             "clip_hf/expected.safetensors"]
    out = {}
    for f in files:
        reader = read_safetensors if f.endswith(".safetensors") else read_torch
        out[f] = digest(reader(f"{root}/{f}"))
    print(json.dumps(out, indent=1, sort_keys=True))
