"""References for CLIP's hidden states by level (the USE head reads them): transformers'
CLIPVisionModel (5.24.0) on the shared clip_hf fixture, `output_hidden_states=True`, in float64,
on the fixture's stored input of case dense_bikes_f100_10x6 (a 10x6 grid: positions
interpolated; read from the fixture by the test, not stored here). Tolerances follow the fixtures' rule: 8x the largest
deviation of a float32 run, never below 2e-6.

    PYTHONPATH=<transformers 5.24.0> ~/.cache/segwatch-peers/venv/bin/python \
        Tests/SegwatchCLIPTests/make_hidden_state_references.py
"""
import json
import os

import torch
from safetensors.torch import load_file, save_file
from transformers import CLIPVisionModel

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "fixtures", "clip_hf"))
torch.set_num_threads(1)
stored = load_file(os.path.join(FIXTURE, "expected.safetensors"))
m64 = CLIPVisionModel.from_pretrained(FIXTURE, torch_dtype=torch.float64).eval()
m32 = CLIPVisionModel.from_pretrained(FIXTURE, torch_dtype=torch.float32).eval()
out, tolerances = {}, {}
for case in ("dense_bikes_f100_10x6",):
    pixels = stored[f"{case}.image.pixels"]
    with torch.no_grad():
        h64 = m64(pixel_values=pixels.double(), output_hidden_states=True, interpolate_pos_encoding=True).hidden_states
        h32 = m32(pixel_values=pixels.float(), output_hidden_states=True, interpolate_pos_encoding=True).hidden_states
    for k in range(len(h64)):
        key = f"{case}.hidden.{k}"
        out[key] = h64[k].float().contiguous()
        deviation = float((h64[k] - h32[k].double()).abs().max())
        tolerances[key] = {"atol": float(f"{max(2e-6, 8 * deviation):.2g}"), "rtol": 0.0, "measured": {"torch_fp32": deviation}}
save_file(out, os.path.join(HERE, "hidden_states.safetensors"))
with open(os.path.join(HERE, "hidden_states.json"), "w") as f:
    json.dump({"fixture": "clip_hf", "levels": len(h64) - 1, "tolerances": tolerances}, f, indent=1, sort_keys=True)
print(f"{len(out)} tensors")
