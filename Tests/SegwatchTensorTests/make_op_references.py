"""Reference values for the CPU ops, computed by torch in float64 from float32 inputs.

Run with the peers venv (../shared/bench/setup.sh has torch):
    ~/.cache/segwatch-peers/venv/bin/python Tests/SegwatchTensorTests/make_op_references.py

Writes op_references.safetensors beside this file: `<case>.<name>` for every input and
expected output. The SAM-specific functions are transcribed from segment_anything 1.0
(modeling/image_encoder.py) so the references do not depend on segwatch's reading of them.
"""
import math
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(20261125)
out = {}


def rand(*shape, scale=1.0):
    return (torch.randn(*shape) * scale).float()


def put(case, **tensors):
    for name, t in tensors.items():
        out[f"{case}.{name}"] = t.detach().to(torch.float32).contiguous()


def d(t):
    return t.double()


# Products.
a, b = rand(2, 3, 5, 7), rand(2, 1, 7, 4)
put("matmul", a=a, b=b, out=d(a) @ d(b))
x, w, bias = rand(2, 5, 6), rand(4, 6), rand(4)
put("linear", x=x, weight=w, bias=bias, out=F.linear(d(x), d(w), d(bias)))

# Convolutions: (name, input, weight shape, stride, padding, dilation, groups).
convs = [
    ("conv_general", (2, 6, 9, 11), (4, 3, 3, 3), 2, 1, 1, 2),
    ("conv_dilated", (1, 6, 9, 11), (5, 6, 3, 3), 1, 2, 2, 1),
    ("conv_pointwise", (2, 6, 5, 4), (8, 6, 1, 1), 1, 0, 1, 1),
    ("conv_patch", (1, 3, 16, 12), (8, 3, 4, 4), 4, 0, 1, 1),
    ("conv_depthwise", (2, 6, 9, 11), (6, 1, 3, 3), 1, 1, 1, 6),
    ("conv_depthwise_s2", (1, 6, 9, 11), (6, 1, 3, 3), 2, 1, 1, 6),
    ("conv_depthwise_5", (1, 4, 7, 8), (4, 1, 5, 5), 1, 2, 1, 4),
]
for name, xs, ws, s, p, dil, g in convs:
    x, w, bias = rand(*xs), rand(*ws), rand(ws[0])
    put(name, x=x, weight=w, bias=bias,
        out=F.conv2d(d(x), d(w), d(bias), stride=s, padding=p, dilation=dil, groups=g))

x, w, bias = rand(2, 5, 4, 3), rand(5, 3, 2, 2), rand(3)
put("conv_transpose", x=x, weight=w, bias=bias, out=F.conv_transpose2d(d(x), d(w), d(bias), stride=2))

# Conv followed by an inference BatchNorm.
x, w, bias = rand(1, 3, 6, 6), rand(4, 3, 3, 3), rand(4)
gamma, beta, mean, var = rand(4), rand(4), rand(4), torch.rand(4) + 0.5
y = F.conv2d(d(x), d(w), d(bias), padding=1)
put("conv_bn", x=x, weight=w, bias=bias, gamma=gamma, beta=beta, mean=mean, var=var,
    out=F.batch_norm(y, d(mean), d(var), d(gamma), d(beta), training=False, eps=1e-5))

# Norms and activations.
x, w, bias = rand(3, 4, 10, scale=3) + 2, rand(10), rand(10)
put("layer_norm", x=x, weight=w, bias=bias, out=F.layer_norm(d(x), (10,), d(w), d(bias), eps=1e-5))
x, w, bias = rand(2, 7, 5, 6, scale=2) - 1, rand(7), rand(7)
u = d(x).mean(1, keepdim=True)
s = (d(x) - u).pow(2).mean(1, keepdim=True)
put("layer_norm_2d", x=x, weight=w, bias=bias,
    out=d(w)[:, None, None] * ((d(x) - u) / torch.sqrt(s + 1e-6)) + d(bias)[:, None, None])
x = torch.linspace(-9, 9, 601).float()
put("activations", x=x, gelu=F.gelu(d(x)), gelu_tanh=F.gelu(d(x), approximate="tanh"),
    quick_gelu=d(x) * torch.sigmoid(1.702 * d(x)), sigmoid=torch.sigmoid(d(x)), relu=F.relu(d(x)))
x = rand(4, 9, scale=20)
put("softmax", x=x, out=torch.softmax(d(x), -1))


# Attention, as the reference models write it.
def attn_ref(q, k, v, scale, bias=None, causal=False):
    s = (q * scale) @ k.transpose(-2, -1)
    if bias is not None:
        s = s + bias
    if causal:
        n = s.shape[-1]
        s = s + torch.full((n, n), float("-inf"), dtype=s.dtype).triu(1)
    p = s.softmax(-1)
    bsz, heads, n, dv = q.shape[0], q.shape[1], q.shape[2], v.shape[-1]
    return (p @ v).transpose(1, 2).reshape(bsz, n, heads * dv)


q, k, v = rand(2, 3, 10, 8), rand(2, 3, 10, 8), rand(2, 3, 10, 6)
bias = rand(3, 10, 10)
put("attention", q=q, k=k, v=v, bias=bias,
    out=attn_ref(d(q), d(k), d(v), 8 ** -0.5),
    out_bias=attn_ref(d(q), d(k), d(v), 8 ** -0.5, bias=d(bias)),
    out_causal=attn_ref(d(q), d(k), d(v), 8 ** -0.5, causal=True))


# segment_anything/modeling/image_encoder.py: get_rel_pos and add_decomposed_rel_pos.
def get_rel_pos(q_size, k_size, rel_pos):
    max_rel_dist = int(2 * max(q_size, k_size) - 1)
    if rel_pos.shape[0] != max_rel_dist:
        rel_pos_resized = F.interpolate(
            rel_pos.reshape(1, rel_pos.shape[0], -1).permute(0, 2, 1), size=max_rel_dist, mode="linear")
        rel_pos_resized = rel_pos_resized.reshape(-1, max_rel_dist).permute(1, 0)
    else:
        rel_pos_resized = rel_pos
    q_coords = torch.arange(q_size)[:, None] * max(k_size / q_size, 1.0)
    k_coords = torch.arange(k_size)[None, :] * max(q_size / k_size, 1.0)
    relative_coords = (q_coords - k_coords) + (k_size - 1) * max(q_size / k_size, 1.0)
    return rel_pos_resized[relative_coords.long()]


def add_decomposed_rel_pos(attn, q, rel_pos_h, rel_pos_w, q_size, k_size):
    q_h, q_w = q_size
    k_h, k_w = k_size
    Rh = get_rel_pos(q_h, k_h, rel_pos_h)
    Rw = get_rel_pos(q_w, k_w, rel_pos_w)
    B, _, dim = q.shape
    r_q = q.reshape(B, q_h, q_w, dim)
    rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, Rh)
    rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, Rw)
    attn = (attn.view(B, q_h, q_w, k_h, k_w) + rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]).view(
        B, q_h * q_w, k_h * k_w)
    return attn


def sam_attention(q, k, v, rel_h, rel_w, size, heads):
    # q, k, v: [B, heads, N, C]; returns [B, N, heads*C] like Attention.forward.
    bsz, _, n, c = q.shape
    qf, kf, vf = (t.reshape(bsz * heads, n, c) for t in (q, k, v))
    attn = (qf * c ** -0.5) @ kf.transpose(-2, -1)
    attn = add_decomposed_rel_pos(attn, qf, rel_h, rel_w, size, size)
    x = attn.softmax(-1) @ vf
    return x.view(bsz, heads, size[0], size[1], c).permute(0, 2, 3, 1, 4).reshape(bsz, n, heads * c)


q, k, v = rand(1, 2, 12, 8), rand(1, 2, 12, 8), rand(1, 2, 12, 8)
rel_h, rel_w = rand(5, 8), rand(7, 8)
put("rel_pos", q=q, k=k, v=v, table_h=rel_h, table_w=rel_w,
    out=sam_attention(d(q), d(k), d(v), d(rel_h), d(rel_w), (3, 4), 2))
# A stored table that does not fit (pretrained at another size): resized linearly.
rel_h9, rel_w4 = rand(9, 8), rand(4, 8)
put("rel_pos_resized", table_h=rel_h9, table_w=rel_w4,
    out=sam_attention(d(q), d(k), d(v), d(rel_h9), d(rel_w4), (3, 4), 2),
    positions_h=get_rel_pos(3, 3, d(rel_h9)))


# segment_anything window_partition / window_unpartition.
def window_partition(x, window_size):
    B, H, W, C = x.shape
    pad_h = (window_size - H % window_size) % window_size
    pad_w = (window_size - W % window_size) % window_size
    if pad_h > 0 or pad_w > 0:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    Hp, Wp = H + pad_h, W + pad_w
    x = x.view(B, Hp // window_size, window_size, Wp // window_size, window_size, C)
    windows = x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, window_size, window_size, C)
    return windows, (Hp, Wp)


x = rand(2, 5, 7, 3)
windows, _ = window_partition(x, 3)
put("windows", x=x, windows=windows)

# Interpolation (align_corners=False, no antialias).
x = rand(1, 2, 5, 7)
for mode in ("bilinear", "bicubic"):
    for h, w in ((9, 4), (12, 15), (3, 3), (5, 20)):
        out[f"interpolate.{mode}_{h}x{w}"] = F.interpolate(
            d(x), size=(h, w), mode=mode, align_corners=False).float()
out["interpolate.x"] = x

# Layout and reductions.
x = rand(2, 3, 4)
put("pad", x=x, out=F.pad(d(x), (0, 3, 1, 2), value=-1.5))
a, b = rand(2, 1, 4), rand(3, 1)
put("broadcast", a=a, b=b, add=d(a) + d(b), mul=d(a) * d(b))
a, b = rand(2, 3, 4), rand(2, 2, 4)
put("concat", a=a, b=b, out=torch.cat([d(a), d(b)], 1))
x = rand(2, 3, 4)
put("mean", x=x, out=d(x).mean(1, keepdim=True))

# Antialiased resampling (transformers' DINOv2 with registers interpolates its positions so),
# shrinking, growing and mixed, on the same input. Not to one column while the rows change too:
# torch 2.15's separable kernel then repeats the first output row in every row.
for mode in ("bilinear", "bicubic"):
    for h, w in ((3, 3), (5, 20), (9, 4), (12, 15), (2, 3)):
        out[f"interpolate_aa.{mode}_{h}x{w}"] = F.interpolate(
            d(out["interpolate.x"]), size=(h, w), mode=mode, align_corners=False, antialias=True).float()

save_file(out, os.path.join(os.path.dirname(os.path.abspath(__file__)), "op_references.safetensors"))
print(f"{len(out)} tensors, {sum(t.numel() for t in out.values())} values")
