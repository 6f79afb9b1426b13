"""References for SegwatchPipelineTests, from numpy alone (float64 math, stored as float32).

Run from this folder: python3 make_pipeline_references.py -> pipeline_references.safetensors

Patch coverage is computed by a route independent of segwatch's interval arithmetic: the frame
is refined so that pixel and patch borders both fall on the fine grid (each pixel split into
gh x gw cells, each patch then exactly H x W cells), and a patch's coverage is the mean of the
mask over its cells.
"""
import json
import struct

import numpy as np

rng = np.random.default_rng(7)
out = {}


def coverage(masks, gh, gw):
    n, h, w = masks.shape
    fine = np.kron(masks.astype(np.float64), np.ones((1, gh, gw)))  # (n, h*gh, w*gw)
    return fine.reshape(n, gh, h, gw, w).mean(axis=(2, 4)).reshape(n, gh * gw)


def normalize(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


# Frame 13x17 under a 3x4 grid (patches 4.33 x 4.25 pixels: every border cuts pixels), and a
# 2x3 frame under the same grid (each pixel spans several patches).
for name, (h, w), (gh, gw) in [("wide", (13, 17), (3, 4)), ("tiny", (2, 3), (3, 4))]:
    masks = np.zeros((5, h, w), np.float32)
    masks[0] = rng.random((h, w)) < 0.4                     # scattered pixels
    masks[1, h // 2:, w // 2:] = 1                           # touches the bottom and right borders
    masks[2, min(4, h - 1), min(4, w - 1)] = 1               # one pixel on a patch border
    masks[4] = 1                                             # the whole frame; masks[3] stays empty
    d = 6
    features = rng.standard_normal((gh * gw, d)).astype(np.float32)
    weights = coverage(masks, gh, gw)
    pooled = weights @ features.astype(np.float64) / np.maximum(weights.sum(1, keepdims=True), 1e-300)
    head_w = rng.standard_normal((4, d)).astype(np.float32)
    head_b = rng.standard_normal(4).astype(np.float32)
    norm_w = (1 + 0.1 * rng.standard_normal(d)).astype(np.float32)
    norm_b = (0.1 * rng.standard_normal(d)).astype(np.float32)
    headed = layer_norm(pooled, norm_w, norm_b) @ head_w.T.astype(np.float64) + head_b
    out[f"{name}.masks"] = masks
    out[f"{name}.features"] = features.reshape(1, gh, gw, d)
    out[f"{name}.coverage"] = weights
    out[f"{name}.embeddings"] = normalize(pooled)      # row 3 (empty) is NaN: the test skips it
    out[f"{name}.head.proj.weight"] = head_w
    out[f"{name}.head.proj.bias"] = head_b
    out[f"{name}.head.norm.weight"] = norm_w
    out[f"{name}.head.norm.bias"] = norm_b
    out[f"{name}.head_embeddings"] = normalize(headed)

# Classifier: 4 segments against 5 labels of dimension 8; labels 3 and 4 identical (a tie).
labels = normalize(rng.standard_normal((5, 8)))
labels[4] = labels[3]
segments = normalize(rng.standard_normal((4, 8)))
segments[3] = labels[3]                                  # exactly on the tied pair
cos = segments @ labels.T
logits = 100 * cos
probs = np.exp(logits - logits.max(1, keepdims=True))
probs /= probs.sum(1, keepdims=True)
out["classify.labels"] = labels
out["classify.segments"] = segments
out["classify.cosines"] = cos
out["classify.probabilities"] = probs

# Semantic map: 4 overlapping segments on a 6x7 frame, 3 labels; segment 2 does not vote.
h, w = 6, 7
masks = np.zeros((4, h, w), np.float32)
masks[0, 0:4, 0:4] = 1
masks[1, 2:6, 2:7] = 1
masks[2, :, :] = 1
masks[3, 1:3, 3:6] = 1
votes = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.9, 0.05, 0.05], [0.45, 0.1, 0.45]], np.float32)
voting = np.array([1, 1, 0, 1], np.float32)
total = np.einsum("shw,sl,s->hwl", masks.astype(np.float64), votes.astype(np.float64), voting)
covered = np.einsum("shw,s->hw", masks, voting) > 0
out["map.masks"] = masks
out["map.probabilities"] = votes
out["map.expected"] = np.where(covered, total.argmax(-1), -1).astype(np.float32)

header, blobs, offset = {}, [], 0
for key in sorted(out):
    data = np.ascontiguousarray(out[key], dtype="<f4").tobytes()
    header[key] = {"dtype": "F32", "shape": list(out[key].shape), "data_offsets": [offset, offset + len(data)]}
    blobs.append(data)
    offset += len(data)
text = json.dumps(header, separators=(",", ":")).encode()
text += b" " * ((8 - len(text) % 8) % 8)
with open("pipeline_references.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
print(f"wrote {len(out)} tensors")
