"""The peer of `segwatch bench head`: steps of the USE head's training in PyTorch (float32,
torch.optim.AdamW, weight decay on proj.weight only), on the same synthetic batch sizes:
ViT-B features (E 512, CLIP 768 wide, DINOv2 768 wide, 2 levels each), batch 256, 256 texts.

    ../shared/bench/boost.sh ~/.cache/segwatch-peers/venv/bin/python \
        Tests/SegwatchUSETests/bench_head_training.py --threads 2 --steps 20

Prints one JSON object: torch_head_step_ms (median) and torch_head_steps_per_s.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "fixtures", "make")))

import torch  # noqa: E402
import use_fixtures  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--steps", type=int, default=20)
ap.add_argument("--warmup", type=int, default=3)
ap.add_argument("--batch", type=int, default=256)
a = ap.parse_args()
torch.set_num_threads(a.threads)
E, Dc, Dd, Lc, Ld, B, U = 512, 768, 768, 2, 2, a.batch, 256
g = torch.Generator().manual_seed(0)
params = {}
for name, shape in use_fixtures.head_param_shapes(E, Dc, Dd, Lc, Ld).items():
    if name == "logit_scale":
        v = torch.tensor(math.log(100.0))
    elif name.endswith("weight") and name != "proj.weight" or name.endswith("scale"):
        v = torch.ones(shape)
    else:
        v = 0.01 * torch.randn(shape, generator=g)
    params[name] = v.clone().requires_grad_(True)
x = {"use": torch.randn(B, E, generator=g), "clip_levels": torch.randn(Lc, B, Dc, generator=g),
     "dino_levels": torch.randn(Ld, B, Dd, generator=g), "clip_image": torch.randn(B, E, generator=g),
     "dino_cls": torch.randn(B, Dd, generator=g)}
text = torch.randn(U, E, generator=g)
text = text / text.norm(dim=-1, keepdim=True)
target = torch.randint(0, U, (B,), generator=g)
opt = torch.optim.AdamW([{"params": [params["proj.weight"]], "weight_decay": 0.05},
                         {"params": [v for k, v in params.items() if k != "proj.weight"], "weight_decay": 0.0}], lr=1e-3)
times = []
for step in range(a.warmup + a.steps):
    start = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    _, _, loss = use_fixtures.head_forward(params, x["use"], x["clip_levels"], x["dino_levels"], x["clip_image"],
                                           x["dino_cls"], text, target)
    loss.backward()
    opt.step()
    if step >= a.warmup:
        times.append(1000 * (time.perf_counter() - start))
ms = statistics.median(times)
print(json.dumps({"torch_head_step_ms": round(ms, 3), "torch_head_steps_per_s": round(1000 / ms, 2), "threads": a.threads,
                  "batch": B, "texts": U, "torch": torch.__version__}))
