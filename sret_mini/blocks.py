"""The transformer block, the non-linear projection layer (NLL), and a recursive stage.

Recursion (paper, Sec. 3.1) shares a block's weights across depth: the same block is applied
several times in a row. Naive recursion x -> f(f(x)) gains accuracy without parameters; SReT adds
two cheap pieces that make it work better:

* an NLL after every application, *not* shared: a small residual MLP that lets each pass through
  the shared block see a differently projected input;
* learnable residual coefficients (LRC): every residual sum gets two learnable scalars,
  x <- a * x + b * f(x), initialised to 1, so the network can weigh each path.
"""

from __future__ import annotations

import torch
from einops import rearrange
from timm.layers import Mlp, drop_path
from torch import nn
from torch.utils.checkpoint import checkpoint

from .attention import SlicedGroupAttention, token_permutation
from .layers import ConvPooling, lrc, residual

LN_EPS = 1e-6


class SReTBlock(nn.Module):
    """Pre-norm transformer block with learnable residual coefficients (shared across its loops).

    x = skip_attn * x + scale_attn * DropPath(Attn(LN(x)))
    x = skip_mlp  * x + scale_mlp  * DropPath(MLP(LN(x)))
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float, drop: float = 0.0, attn_drop: float = 0.0,
                 learnable_residuals: bool = True):  # fmt: skip
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = SlicedGroupAttention(dim, heads, attn_drop=attn_drop, proj_drop=drop)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=drop)
        self.skip_attn, self.scale_attn = lrc(learnable_residuals), lrc(learnable_residuals)
        self.skip_mlp, self.scale_mlp = lrc(learnable_residuals), lrc(learnable_residuals)

    def forward(self, x, groups: int = 1, perm: torch.Tensor | None = None, drop_prob: float = 0.0):
        # x: (B, N, C). The drop-path rate is an argument because it belongs to the application
        # (its position in depth), not to the shared weights.
        attn = drop_path(self.attn(self.norm1(x), groups, perm), drop_prob, self.training)
        x = residual(x, attn, self.skip_attn, self.scale_attn)
        mlp = drop_path(self.mlp(self.norm2(x)), drop_prob, self.training)
        return residual(x, mlp, self.skip_mlp, self.scale_mlp)


class NLL(nn.Module):
    """Non-linear projection layer: x = skip * x + scale * MLP(LN(x)). One per block application."""

    def __init__(self, dim: int, mlp_ratio: float, drop: float = 0.0, learnable_residuals: bool = True):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=drop)
        self.skip, self.scale = lrc(learnable_residuals), lrc(learnable_residuals)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return residual(x, self.mlp(self.norm(x)), self.skip, self.scale)


class RecursiveStage(nn.Module):
    """One stage: optional pooling, then `unique_blocks` shared blocks each applied `loops` times.

    Application i (0-based) uses shared block i // loops, followed by NLL i (NLL i // nll_share when
    `nll_share` consecutive applications share one):

        block 0, NLL 0, block 0, NLL 1, block 1, NLL 2, block 1, NLL 3, ...   (loops = 2)

    The first application of a block attends inside `groups_first` contiguous groups; the later
    ones inside `groups_recursive` groups of permuted tokens.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        unique_blocks: int,
        loops: int,
        groups_first: int,
        groups_recursive: int,
        mlp_ratio: float,
        nll_mlp_ratio: float,
        drop_path_rates: list[float],
        in_dim: int | None = None,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        shuffle: str = "train",
        seed: int = 0,
        nll: bool = True,
        learnable_residuals: bool = True,
        nll_share: int = 1,
    ):
        super().__init__()
        self.loops, self.nll_share = loops, nll_share
        self.groups_first, self.groups_recursive = groups_first, groups_recursive
        self.drop_path_rates = list(drop_path_rates)
        self.shuffle, self.seed = shuffle, seed
        self.grad_checkpointing = False
        self.downsample = ConvPooling(in_dim, dim) if in_dim is not None else nn.Identity()
        self.blocks = nn.ModuleList(
            SReTBlock(dim, heads, mlp_ratio, drop, attn_drop, learnable_residuals) for _ in range(unique_blocks)
        )
        # nll=False is naive recursion: the block's output goes straight into its next application
        self.nlls = nn.ModuleList(
            NLL(dim, nll_mlp_ratio, drop, learnable_residuals) if nll else nn.Identity()
            for _ in range(unique_blocks * loops // nll_share)
        )
        self.num_applications = unique_blocks * loops

    def groups(self, i: int) -> int:
        """Attention groups of application i: G1 on a block's first pass, G2 on its later passes."""
        return self.groups_recursive if i % self.loops else self.groups_first

    def application(self, i: int, num_tokens: int, device) -> tuple[SReTBlock, int, torch.Tensor | None]:
        """Shared block, group count and token permutation of application i."""
        groups, perm = self.groups(i), None
        if i % self.loops and groups > 1:  # a recursive pass; global attention ignores token order
            perm = token_permutation(num_tokens, self.shuffle, self.training, self.seed + i, device)
        return self.blocks[i // self.loops], groups, perm

    def _apply_one(self, x, block, nll, groups, perm, drop_prob):
        return nll(block(x, groups, perm, drop_prob))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)  # (B, C, H, W)
        h, w = x.shape[-2:]
        x = rearrange(x, "b c h w -> b (h w) c")
        for i in range(self.num_applications):
            block, groups, perm = self.application(i, x.shape[1], x.device)
            nll = self.nlls[i // self.nll_share]
            args = (x, block, nll, groups, perm, self.drop_path_rates[i])
            if self.grad_checkpointing and torch.is_grad_enabled():
                # the permutation is drawn outside, and checkpoint replays the RNG state for drop
                # path, so the recomputed forward is the same computation: identical gradients
                x = checkpoint(self._apply_one, *args, use_reentrant=False)
            else:
                x = self._apply_one(*args)
        return rearrange(x, "b (h w) c -> b c h w", h=h, w=w)
