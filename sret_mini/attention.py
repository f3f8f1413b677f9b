"""Sliced group self-attention (paper, Sec. 3.3).

Plain multi-head self-attention over N tokens costs about 4*N*C^2 + 2*N^2*C multiply-adds: the
projections plus the N x N attention map. Cutting the tokens into G groups and attending only
inside each group divides the quadratic term by G.

SReT slices differently in the two kinds of application of a shared block:

* the first application cuts the raster-ordered tokens into `groups_first` contiguous slices
  (horizontal bands of the image);
* the recursive (later) applications first shuffle the tokens with a permutation, cut them into
  `groups_recursive` slices and put the outputs back in place. A token can then meet tokens from
  every band, so information crosses the slices of the first application.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

_MASK32 = 0xFFFFFFFF


def fixed_permutation(n: int, seed: int, device: torch.device | None = None) -> torch.Tensor:
    """A permutation of range(n) that depends only on `seed`: same on every call and device.

    Each index is passed through an invertible 32-bit integer hash and the permutation is the
    order that sorts the hashes. No random-number generator is touched, so this is cheap, works
    under `torch.compile`, and never disturbs the global RNG stream.
    """
    offset = (seed * 0x9E3779B1) & _MASK32
    h = (torch.arange(n, device=device, dtype=torch.int64) + offset) & _MASK32
    h = ((h >> 16) ^ h) * 0x45D9F3B & _MASK32
    h = ((h >> 16) ^ h) * 0x45D9F3B & _MASK32
    h = (h >> 16) ^ h
    return torch.argsort(h)  # the hash is a bijection on 32 bits: no ties


def token_permutation(n: int, policy: str, training: bool, seed: int, device=None) -> torch.Tensor | None:
    """The token order of a recursive application under a shuffle policy (see `SReTConfig.shuffle`)."""
    if policy == "none":
        return None
    if policy == "random" or training:
        return torch.randperm(n, device=device)
    return fixed_permutation(n, seed, device)


class SlicedGroupAttention(nn.Module):
    """Multi-head self-attention computed independently inside G equal groups of tokens.

    `groups=1` is ordinary global attention. With a permutation `perm` (a LongTensor of length N)
    the groups are cut from the tokens in that order, and the output is returned in the original
    order, before the output projection. Module names (qkv, proj) match the official checkpoints.
    """

    def __init__(self, dim: int, heads: int, attn_drop: float = 0.0, proj_drop: float = 0.0):
        super().__init__()
        self.heads = heads
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, groups: int = 1, perm: torch.Tensor | None = None) -> torch.Tensor:
        # x: (B, N, C) tokens in raster order
        if perm is not None:
            x = x[:, perm]  # shuffle the tokens: slice k now holds tokens from all over the image
        q, k, v = rearrange(self.qkv(x), "b (g n) (three h d) -> three (b g) h n d", g=groups, three=3, h=self.heads)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        out = rearrange(out, "(b g) h n d -> b (g n) (h d)", g=groups)
        if perm is not None:
            out = out[:, torch.argsort(perm)]  # undo the shuffle: token i back at position i
        return self.proj_drop(self.proj(out))
