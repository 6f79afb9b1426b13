#!/usr/bin/env python3
"""Writes the TorchScript archives the checkpoint tests read, and what torch says they hold.

OpenAI publishes CLIP's weights as TorchScript archives (`torch.jit.save`): the pickle in
`<name>/data.pkl` is the module tree as objects, not a state dict. These two tiny modules
have that shape (nested modules, a ModuleList, MultiheadAttention's fused projection, a
buffer, a half tensor, a view into a shared storage); one is traced, as OpenAI's are, one is
scripted (its objects also carry ints, floats, strings, None and typed lists, as open_clip's
scripted models do).

    ~/.cache/segwatch-peers/venv/bin/python make_torchscript.py

writes traced.pt, scripted.pt and expected.json: for each archive, torch's own
`state_dict()` after `torch.jit.load`, every tensor as float32 values with its shape. The
archives are then rewritten without most of their `code/` folder (TorchScript source and
debug pickles, most of their size, which segwatch never reads; the one file kept is
compressed, as torch writes them); their pickles and storages stay byte for byte as torch
wrote them.
"""
import json
import zipfile

import torch
from torch import nn

torch.manual_seed(0)


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, 2)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))
        self.scale = 0.5
        self.name = "block"

    def forward(self, x):
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.scale * self.mlp(x)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.randn(3, 4))
        self.resblocks = nn.ModuleList([Block(4), Block(4)])
        shared = torch.randn(6, 4)
        self.register_buffer("window", shared[2:5])  # offset 8 into a 24-element storage
        self.proj = nn.Parameter(torch.randn(4, 2).t().contiguous().t())  # a transposed view
        self.scale16 = nn.Parameter(torch.randn(2, 3).half(), requires_grad=False)
        self.count = 3
        self.sizes = [3, 4]  # a typed list: torch.jit._pickle.build_intlist
        self.nothing = None

    def forward(self, x):
        x = x + self.positional_embedding
        for block in self.resblocks:
            x = block(x)
        return (x[:, 0, :] + self.window[0]) @ self.proj + self.scale16.float().sum()


def main():
    model = Tiny().eval()
    example = torch.randn(3, 1, 4)
    archives = {
        "traced.pt": torch.jit.trace(model, example),
        "scripted.pt": torch.jit.script(model),
    }
    expected = {}
    for name, module in archives.items():
        torch.jit.save(module, name)
        loaded = torch.jit.load(name)
        expected[name] = {key: {"shape": list(value.shape), "values": value.float().flatten().tolist()}
                          for key, value in loaded.state_dict().items()}
    for name in archives:
        with zipfile.ZipFile(name) as source:
            kept = [(info, source.read(info)) for info in source.infolist()
                    if "/code/" not in info.filename or info.filename.endswith("/code/__torch__.py")]
        with zipfile.ZipFile(name, "w", zipfile.ZIP_STORED) as target:
            for info, data in kept:
                target.writestr(info, data)
    with open("expected.json", "w") as f:
        json.dump(expected, f, indent=1)


if __name__ == "__main__":
    main()
