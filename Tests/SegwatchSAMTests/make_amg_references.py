"""Expected values of AMGUtilityTests.swift, printed by the official functions.

Run with the peers venv (torch, torchvision, numpy; segment_anything 1.0):
    ~/.cache/segwatch-peers/venv/bin/python Tests/SegwatchSAMTests/make_amg_references.py

Every section names the call whose output the test records. The venv has neither pycocotools
nor OpenCV, so the compressed RLE string comes from `rle_to_string` below, a line-by-line
transcription of pycocotools 2.0.11 common/maskApi.c `rleToString`, checked by decoding it
again with `check_sam.rle_counts_from_string` (shared/fixtures/make). Where pycocotools or cv2
(opencv-python-headless 5.0.0.93, the fixtures' versions) can be imported, the script also
checks the string against `pycocotools.mask.frPyObjects` and prints the labels of
`cv2.connectedComponentsWithStats` and the output of `remove_small_regions` for the
small-region cases.
"""
import os
import sys

import numpy as np
import torch
from segment_anything.utils import amg
from torchvision.ops import batched_nms

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "shared", "fixtures", "make"))
from check_sam import rle_counts_from_string, rle_decode  # noqa: E402


def rle_to_string(counts):
    """pycocotools maskApi.c rleToString, transcribed (C `long` arithmetic is Python int)."""
    out = []
    for i, c in enumerate(counts):
        x = c
        if i > 2:
            x -= counts[i - 2]
        more = True
        while more:
            ch = x & 0x1F
            x >>= 5
            more = (x != -1) if (ch & 0x10) else (x != 0)
            if more:
                ch |= 0x20
            out.append(chr(ch + 48))
    return "".join(out)


def grid(rows):
    """A mask drawn as strings, '#' set."""
    return np.array([[ch == "#" for ch in row] for row in rows], dtype=bool)


def pattern_mask():
    """40x50: a filled rectangle, a diagonal line and the top-left pixel, so the counts have
    multi-group values and negative deltas and start with a 0-run."""
    m = np.zeros((40, 50), dtype=bool)
    m[5:30, 10:42] = True
    for k in range(40):
        m[k, (k * 7) % 50] = True
    m[0, 0] = True
    return m


def section(title):
    print(f"\n== {title}")


section("mask_to_rle_pytorch, rle_to_string, area_from_rle")
cases = {
    "small": grid([".##.", "#..#", "##.#"]),
    "pattern": pattern_mask(),
    "empty": np.zeros((2, 3), dtype=bool),
    "full": np.ones((2, 3), dtype=bool),
}
for name, m in cases.items():
    rle = amg.mask_to_rle_pytorch(torch.from_numpy(m)[None])[0]
    s = rle_to_string(rle["counts"])
    assert rle_counts_from_string(s) == rle["counts"]
    assert (rle_decode({"size": rle["size"], "counts": s}) == m).all()
    assert (amg.rle_to_mask(rle) == m).all()
    try:
        from pycocotools import mask as mask_utils

        assert amg.coco_encode_rle(rle)["counts"] == s
        coco = " (pycocotools agrees)"
    except ImportError:
        coco = ""
    print(f"{name}: size {rle['size']} area {amg.area_from_rle(rle)} counts {rle['counts']}")
    print(f"  string {s!r}{coco}")

section("batched_mask_to_box, box_xyxy_to_xywh")
one = np.zeros((4, 5), dtype=bool)
one[2, 3] = True
for name, m in {"one pixel at (y 2, x 3) in 4x5": one, "empty 2x3": cases["empty"],
                "full 2x3": cases["full"], "small": cases["small"], "pattern": cases["pattern"]}.items():
    box = amg.batched_mask_to_box(torch.from_numpy(m))
    print(f"{name}: box {box.tolist()} bbox {amg.box_xyxy_to_xywh(box).tolist()}")

section("uncrop_masks")
crop = grid(["#.#", ".##"])
out = amg.uncrop_masks(torch.from_numpy(crop)[None], [2, 1, 5, 3], 4, 6)[0].numpy()
print("2x3 into 4x6 at crop [2, 1, 5, 3]:", ["".join("#" if v else "." for v in row) for row in out])

section("batched_nms (torchvision)")


def nms(boxes, scores, cats, thr):
    keep = batched_nms(torch.tensor(boxes, dtype=torch.float32), torch.tensor(scores, dtype=torch.float32),
                       torch.tensor(cats), thr)
    return keep.tolist()


print("identical x3, thr 1.0:", nms([[0, 0, 10, 10]] * 3, [0.5, 0.9, 0.7], [0, 0, 0], 1.0))
print("identical x3, thr 0.99:", nms([[0, 0, 10, 10]] * 3, [0.5, 0.9, 0.7], [0, 0, 0], 0.99))
half = [[0, 0, 10, 10], [0, 0, 10, 5]]  # IoU 50 / 100 = 0.5 exactly
print("IoU 0.5, thr 0.5:", nms(half, [0.9, 0.8], [0, 0], 0.5))
print("IoU 0.5, thr 0.4999:", nms(half, [0.9, 0.8], [0, 0], 0.4999))
seven = [[0, 0, 10, 1], [0, 0, 7, 1]]  # float32(7 / 10) = 0.69999999 < 0.7 (double)
print("IoU f32(0.7), thr 0.7:", nms(seven, [0.9, 0.8], [0, 0], 0.7))
print("IoU f32(0.7), thr 0.69999:", nms(seven, [0.9, 0.8], [0, 0], 0.69999))
print("identical, categories 0 1 0, thr 0.5:", nms([[0, 0, 10, 10]] * 3, [0.5, 0.9, 0.7], [0, 1, 0], 0.5))
apart = [[20 * i, 0, 20 * i + 10, 10] for i in range(6)]
print("disjoint, equal scores:", nms(apart, [0.5, 0.5, 0.9, 0.5, 0.9, 0.1], [0] * 6, 0.5))
mixed_boxes = [[0, 0, 10, 10], [1, 1, 11, 11], [2, 0, 12, 10], [30, 30, 40, 40], [31, 29, 41, 39],
               [0, 0, 5, 5], [100, 100, 120, 130], [105, 100, 125, 130], [0, 0, 10, 10],
               [3, 3, 8, 8], [32, 32, 38, 38], [101, 99, 119, 131]]
mixed_scores = [0.9, 0.85, 0.6, 0.7, 0.7, 0.3, 0.95, 0.5, 0.9, 0.2, 0.65, 0.95]
mixed_cats = [0, 0, 1, 0, 0, 1, 2, 2, 1, 0, 0, 2]
print("mixed, thr 0.5:", nms(mixed_boxes, mixed_scores, mixed_cats, 0.5))
print("mixed, thr 0.3:", nms(mixed_boxes, mixed_scores, mixed_cats, 0.3))
print("mixed, one category, thr 0.5:", nms(mixed_boxes, mixed_scores, [0] * 12, 0.5))
nan = float("nan")
print("NaN scores, identical boxes:", nms([[0, 0, 10, 10]] * 5, [0.5, nan, 0.9, nan, 0.1], [0] * 5, 0.5))
print("NaN scores, disjoint boxes:", nms(apart[:5], [0.5, nan, 0.9, nan, 0.1], [0] * 5, 0.5))

section("generate_crop_boxes")
for args in [((322, 480), 1, 512 / 1500), ((400, 400), 1, 0.3413333333333333), ((322, 480), 2, 512 / 1500)]:
    boxes, layers = amg.generate_crop_boxes(*args)
    print(f"{args}: {boxes} layers {layers}")

section("build_all_layer_point_grids(8, 1, 2) and build_point_grid(12)")
for i, g in enumerate(amg.build_all_layer_point_grids(8, 1, 2)):
    n = int(round(len(g) ** 0.5))
    side = g[:n, 0]
    assert all(g[k, 0] == side[k % n] and g[k, 1] == side[k // n] for k in range(len(g)))
    print(f"layer {i}: {len(g)} points, x of the first row {[repr(float(v)) for v in side]}")
# Dyadic grids (8, 16, 32) are exact in any formula; 12 is not, so it pins numpy's linspace.
g12 = amg.build_point_grid(12)
side = g12[:12, 0]
assert all(g12[k, 0] == side[k % 12] and g12[k, 1] == side[k // 12] for k in range(144))
start, stop = 1 / 24, 1 - 1 / 24
other = [start + i * (stop - start) / 11 for i in range(12)]
print("n 12 side:", [repr(float(v)) for v in side])
print("  indices where start + i * (stop - start) / (n - 1) differs:", [i for i in range(12) if other[i] != side[i]])

section("is_box_near_crop_edge (crop [0, 0, 240, 161] and [208, 0, 480, 161] of a 322x480 image)")
orig = [0, 0, 480, 322]
for crop_box, boxes in [([0, 0, 240, 161], [[10, 10, 220, 140], [10, 10, 221, 140], [10, 10, 219, 141],
                                             [0, 0, 100, 100], [10, 10, 200, 142]]),
                        ([208, 0, 480, 161], [[19, 0, 271, 100], [20, 0, 271, 100], [21, 5, 271, 140],
                                              [21, 5, 250, 141]]),
                        ([0, 0, 480, 322], [[0, 0, 479, 321], [5, 5, 20, 20]])]:
    near = amg.is_box_near_crop_edge(torch.tensor(boxes), crop_box, orig).tolist()
    print(f"crop {crop_box}: boxes {boxes} near {near}")

section("calculate_stability_score")
logits = torch.tensor([[2.0, 1.0, 0.5, -2.0], [1.5, -0.5, -1.0, 0.99], [3.0, 1.01, -0.99, -1.01]])
print("3x4 logits, threshold 0, offset 1:", repr(amg.calculate_stability_score(logits[None], 0.0, 1.0).item()))
print("all below -offset:", amg.calculate_stability_score(torch.full((1, 2, 2), -5.0), 0.0, 1.0).item())

try:
    import cv2  # noqa: F401
except ImportError:
    sys.exit(0)

section("cv2.connectedComponentsWithStats(mask, 8) and remove_small_regions (cv2 present)")
tie = grid(["..##", "#...", "#..."])
n, labels, stats, _ = cv2.connectedComponentsWithStats(tie.astype(np.uint8), 8)
print("tie labels:", labels.tolist(), "sizes:", stats[:, -1].tolist())
for name, rows, thr, mode in [
    ("hole", ["......", ".###..", ".#.#..", ".###..", "......", "......"], 2, "holes"),
    ("diagonal gap", [".....", ".##..", ".#.#.", "..##.", "....."], 2, "holes"),
    ("small background", [".##", "###", "###"], 2, "holes"),
    ("island", ["###...", "###...", "......", ".....#"], 2, "islands"),
    ("all small", ["##....", "......", "...###"], 5, "islands"),
    ("tie", ["..##", "#...", "#..."], 5, "islands"),
    ("diagonal pair", ["#.", ".#"], 2, "islands"),
    ("single small island", ["....", ".##.", "...."], 5, "islands"),
    ("nothing small", ["##..", "##..", "...."], 4, "islands"),
]:
    mask, changed = amg.remove_small_regions(grid(rows), thr, mode)
    print(f"{name} ({mode}, {thr}): {['' .join('#' if v else '.' for v in r) for r in mask]} changed {changed}")
