"""An independent forward pass over a state dict in the *official* layout.

Written from the description of the authors' model (../shared/reference/sret_facts.md) as plain
functions over the tensors, walking `transformers.{s}.blocks.{i}` in order the way the official
module list does, with the official rule for which entries are recursive applications
((i + 2) % 4 == 0, valid for loops of 2). Attention is an explicit loop over the groups, so this
shares no code with `sret_mini` and checks the converter and the model at once. No permutation:
it is the reference for the "shuffle disabled" comparison.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F

EPS = 1e-6


def _ln(x, sd, p):
    return F.layer_norm(x, x.shape[-1:], sd[p + ".weight"], sd[p + ".bias"], EPS)


def _mlp(x, sd, p):
    x = F.gelu(F.linear(x, sd[p + ".fc1.weight"], sd[p + ".fc1.bias"]))
    return F.linear(x, sd[p + ".fc2.weight"], sd[p + ".fc2.bias"])


def _attention(x, sd, p, heads, groups):
    b, n, c = x.shape
    qkv = F.linear(x, sd[p + ".qkv.weight"], sd[p + ".qkv.bias"])  # (b, n, 3c)
    q, k, v = qkv[..., :c], qkv[..., c : 2 * c], qkv[..., 2 * c :]
    d = c // heads
    out = torch.empty_like(q)
    size = n // groups
    for g in range(groups):
        rows = slice(g * size, (g + 1) * size)
        for h in range(heads):
            cols = slice(h * d, (h + 1) * d)
            qg, kg, vg = q[:, rows, cols], k[:, rows, cols], v[:, rows, cols]
            weights = torch.softmax(qg @ kg.transpose(1, 2) / d**0.5, dim=-1)
            out[:, rows, cols] = weights @ vg
    return F.linear(out, sd[p + ".proj.weight"], sd[p + ".proj.bias"])


def official_forward(sd: dict, x: torch.Tensor, heads, groups_first, groups_recursive) -> torch.Tensor:
    """Logits of the official SReT for images x, from an official-layout state dict (eval mode)."""
    for i in (1, 2, 3):
        p = f"patch_embed.conv{i}"
        x = F.conv2d(x, sd[p + ".weight"], sd[p + ".bias"], stride=2, padding=1)
        bn = f"patch_embed.bn{i}"
        x = F.batch_norm(x, sd[bn + ".running_mean"], sd[bn + ".running_var"], sd[bn + ".weight"], sd[bn + ".bias"])
        x = F.relu(x)
    x = x + sd["pos_embed"]
    num_stages = 1 + max(int(m[1]) for k in sd if (m := re.match(r"transformers\.(\d+)\.", k)))
    for s in range(num_stages):
        if s > 0:
            w = sd[f"pools.{s - 1}.conv.weight"]
            x = F.conv2d(x, w, sd[f"pools.{s - 1}.conv.bias"], stride=2, padding=1, groups=x.shape[1])
        bsz, c, h, w_ = x.shape
        t = x.flatten(2).transpose(1, 2)  # (b, h*w, c), raster order
        entries = sorted({int(m[1]) for k in sd if (m := re.match(rf"transformers\.{s}\.blocks\.(\d+)\.", k))})
        for i in entries:
            p = f"transformers.{s}.blocks.{i}"
            coef = lambda j, p=p: sd[f"{p}.coefficient{j}.bias"]  # noqa: E731
            if f"{p}.attn.qkv.weight" in sd:  # a transformer block
                groups = groups_recursive[s] if (i + 2) % 4 == 0 else groups_first[s]
                t = coef(1) * t + coef(2) * _attention(_ln(t, sd, p + ".norm1"), sd, p + ".attn", heads[s], groups)
                t = coef(3) * t + coef(4) * _mlp(_ln(t, sd, p + ".norm2"), sd, p + ".mlp")
            else:  # a non-linear projection layer
                t = coef(1) * t + coef(2) * _mlp(_ln(t, sd, p + ".norm1"), sd, p + ".mlp")
        x = t.transpose(1, 2).reshape(bsz, c, h, w_)
    pooled = _ln(x.mean(dim=(2, 3)), sd, "norm")
    return F.linear(pooled, sd["head.weight"], sd["head.bias"])
