"""The reference of the pairs -> features -> train test (TrainCommandTests), in PyTorch.

From instances.json (hand-made COCO annotations of two fixture pictures): the masks as pycocotools
makes them (annToMask), each picture through the fixture CLIP (transformers CLIPModel; ClearCLIP's
last block and the picture preprocessing as the CLIP fixtures define them, clip_fixtures.py) and the
fixture DINOv2 (transformers Dinov2Model), each segment's head inputs averaged by its exact coverage
of each model's grid, the category names embedded by CLIP's text tower; then three steps of
`segwatch train --no-shuffle` (one batch of every segment, one description each, the classes the
texts they name; head_forward of use_fixtures.py, torch.optim.AdamW with decay on proj.weight only,
the cosine schedule). Run in float64 (stored as float32), tolerances 8x the float32 run's deviation,
never below 2e-6 (the fixtures' rule).

    PYTHONPATH=<transformers 5.24.0>:<pycocotools> ~/.cache/segwatch-peers/venv/bin/python \
        Tests/segwatchTests/TrainEndToEnd/make_train_references.py
"""
import json
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.normpath(os.path.join(HERE, "..", "..", "..", "..", "shared", "fixtures"))
sys.path.insert(0, os.path.join(FIXTURES, "make"))

import clip_fixtures as cf  # noqa: E402
import use_fixtures as uf  # noqa: E402
from pycocotools.coco import COCO  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import Dinov2Model  # noqa: E402

CLIP_SIZE, DINO_SIZE, CLIP_LEVELS, DINO_LEVELS = 64, 56, [1, 3], [2]
STEPS, LR, WD, LOGIT_SCALE = 3, 1e-3, 0.05, 4.0
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def dense_grid(h, w, patch, size):
    """segwatch's grid: `size` on the short side, the long side the nearest multiple (rounded)."""
    short = max(1, round(size / patch))
    long = lambda side, other: max(1, round(side / max(other, 1) * short))  # noqa: E731
    grid = (short, long(w, h)) if h <= w else (long(h, w), short)
    assert grid[0] * grid[1] <= 4 * short * short
    return grid


def coverage(mask, gh, gw):
    """Each patch's covered fraction: every pixel split into gh x gw cells, each patch exactly
    H x W cells (make_pipeline_references.py's route)."""
    h, w = mask.shape
    fine = np.kron(mask.astype(np.float64), np.ones((gh, gw)))
    return fine.reshape(gh, h, gw, w).mean(axis=(1, 3)).reshape(gh * gw)


def features(dtype):
    coco = COCO(os.path.join(HERE, "instances.json"))
    clip = cf.LibModel(os.path.join(FIXTURES, "clip_hf"), dtype)
    mean, std = clip.mean, clip.std
    patch = clip.arch["patch_size"]
    dino = Dinov2Model.from_pretrained(os.path.join(FIXTURES, "dinov2")).to(dtype).eval()
    rows = {k: [] for k in ("use", "clip_levels", "dino_levels", "clip_image", "dino_cls")}
    texts, target = [], []
    order = []
    for ann in coco.dataset["annotations"]:
        if ann["image_id"] not in order:
            order.append(ann["image_id"])
    for image_id in order:
        info = coco.imgs[image_id]
        img = cf.load_png_rgb_u8(os.path.join(FIXTURES, "images", info["file_name"]))
        h, w = img.shape[:2]
        gh, gw = dense_grid(h, w, patch, CLIP_SIZE)
        _, pixels = cf.preprocess(img, (gh * patch, gw * patch), mean, std, dtype)
        with torch.no_grad():
            pooled, dense = clip.encode_image(pixels, dense=True)
            hidden = clip.model.vision_model(pixel_values=pixels, interpolate_pos_encoding=True, output_hidden_states=True).hidden_states
            dh, dw = dense_grid(h, w, 14, DINO_SIZE)
            _, dpixels = cf.preprocess(img, (dh * 14, dw * 14), IMAGENET_MEAN, IMAGENET_STD, dtype)
            dout = dino(pixel_values=dpixels, output_hidden_states=True)
        for ann in [a for a in coco.dataset["annotations"] if a["image_id"] == image_id]:
            seg = ann["segmentation"]
            if isinstance(seg, list) and any(len(p) < 6 for p in seg):
                continue  # a polygon of fewer than 3 points: segwatch pairs skips it
            mask = coco.annToMask(ann)
            wc = torch.tensor(coverage(mask, gh, gw), dtype=dtype)
            wd = torch.tensor(coverage(mask, dh, dw), dtype=dtype)
            if wc.sum() == 0 or wd.sum() == 0:
                continue
            avg = lambda weights, tokens: (weights @ tokens) / weights.sum()  # noqa: E731
            rows["use"].append(avg(wc, dense[0].reshape(gh * gw, -1)))
            rows["clip_levels"].append(torch.stack([avg(wc, hidden[k][0, 1:]) for k in CLIP_LEVELS]))
            rows["dino_levels"].append(torch.stack([avg(wd, dout.hidden_states[k][0, 1:]) for k in DINO_LEVELS]))
            rows["clip_image"].append(pooled[0])
            rows["dino_cls"].append(dout.pooler_output[0])
            name = coco.cats[ann["category_id"]]["name"]
            if name not in texts:
                texts.append(name)
            target.append(texts.index(name))
    with torch.no_grad():
        text = clip.encode_text(cf.tokenize(texts))
    text = text / text.norm(dim=-1, keepdim=True)
    x = {k: torch.stack(v) for k, v in rows.items()}
    x["clip_levels"] = x["clip_levels"].transpose(0, 1).contiguous()
    x["dino_levels"] = x["dino_levels"].transpose(0, 1).contiguous()
    return x, text, torch.tensor(target)


def train(dtype):
    x, text, target = features(dtype)
    E, Dc, Dd = x["use"].shape[1], x["clip_levels"].shape[2], x["dino_levels"].shape[2]
    params = {}
    for name, shape in uf.head_param_shapes(E, Dc, Dd, len(CLIP_LEVELS), len(DINO_LEVELS)).items():
        one = (name.endswith(".weight") and name != "proj.weight") or (name.endswith("scale") and name != "logit_scale")
        value = LOGIT_SCALE if name == "logit_scale" else 1.0 if one else 0.0
        params[name] = torch.full(shape, float(np.float32(value)), dtype=dtype, requires_grad=True)
    opt = torch.optim.AdamW([{"params": [params["proj.weight"]], "weight_decay": WD},
                             {"params": [v for k, v in params.items() if k != "proj.weight"], "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.999), eps=1e-8, foreach=False)
    classes = sorted(set(target.tolist()))
    mapped = torch.tensor([classes.index(t) for t in target.tolist()])
    losses = []
    for step in range(STEPS):
        for group in opt.param_groups:
            group["lr"] = LR * 0.5 * (1 + math.cos(math.pi * step / STEPS))
        opt.zero_grad()
        _, _, loss = uf.head_forward(params, x["use"], x["clip_levels"], x["dino_levels"], x["clip_image"], x["dino_cls"],
                                     text[classes], mapped)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    return torch.stack(losses), {k: v.detach() for k, v in params.items()}, x


torch.set_num_threads(1)
l64, p64, x64 = train(torch.float64)
l32, p32, x32 = train(torch.float32)
tensors, tolerances = {}, {}


def put(key, a, b):
    tensors[key] = a.to(torch.float32).contiguous()
    deviation = float((a - b.double()).abs().max())
    tolerances[key] = {"atol": float(f"{max(2e-6, 8 * deviation):.2g}"), "rtol": 0.0, "measured": {"torch_fp32": deviation}}


put("losses", l64, l32)
for name in p64:
    put(f"param.{name}", p64[name], p32[name])
for name in x64:
    put(f"input.{name}", x64[name], x32[name])
save_file(tensors, os.path.join(HERE, "expected.safetensors"))
with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump({"clip_size": CLIP_SIZE, "dino_size": DINO_SIZE, "clip_levels": CLIP_LEVELS, "dino_levels": DINO_LEVELS,
               "steps": STEPS, "lr": LR, "weight_decay": WD, "logit_scale": LOGIT_SCALE, "segments": int(x64["use"].shape[0]),
               "tolerances": tolerances}, f, indent=1, sort_keys=True)
print("losses", l64.tolist(), "segments", x64["use"].shape[0])
