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

from collections import deque

import torch
from einops import rearrange
from timm.layers import Mlp, drop_path
from torch import nn
from torch.utils.checkpoint import checkpoint

from . import checks
from .attention import SlicedGroupAttention, token_permutation
from .layers import ConvPooling, lrc, residual
from .model_config import EXTRA_APPLICATIONS

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
    ones inside `groups_recursive` groups of permuted tokens (application i draws with seed
    `seed + i`, so evaluation is deterministic under the "train" policy).

    Depth at call time: `stage(x, loops=n)` applies every shared block n times instead of the
    trained `loops` (more or fewer), with no new parameters. Application j of a block (0-based)
    uses the block's trained application j when j < loops; beyond that `extra_applications` says
    which trained application lends its NLL (and the NLL's residual coefficients):

    * "last": the block's last trained application, for every extra one: the extra applications
      iterate one fixed map, block then NLL, as a recurrent network does;
    * "cycle": trained application j mod loops: the NLLs repeat in their trained order;
    * "error": loops beyond the trained count are refused with a ValueError.

    An extra application drops paths at the rate of its block's last trained application. With
    nll=False (naive recursion) nothing is per application, so any n works under every rule.

    Recall (input injection): with `recall`, the stage's input tokens x0 (after the pooling) are
    added to the state before every application after the first, x <- x + x0 (no parameters);
    with `state_norm` too, x <- LN(x) + x0, one LayerNorm shared by the stage's applications
    (2 * dim parameters) that keeps the state's scale bounded far beyond the trained depth.
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
        extra_applications: str = "last",
        recall: bool = False,
        state_norm: bool = False,
    ):
        super().__init__()
        self.loops, self.nll_share = loops, nll_share
        self.groups_first, self.groups_recursive = groups_first, groups_recursive
        self.drop_path_rates = list(drop_path_rates)
        self.shuffle, self.seed = shuffle, seed
        self.extra_applications = checks.choice("extra_applications", extra_applications, EXTRA_APPLICATIONS)
        self.recall, self.has_nlls = recall, nll
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
        self.state_norm = nn.LayerNorm(dim, eps=LN_EPS) if state_norm else nn.Identity()
        self.num_applications = unique_blocks * loops

    def check_loops(self, loops: int | None, where: str = "this stage") -> int:
        """Applications per shared block for a call: `loops` checked, or the trained count if None."""
        if loops is None:
            return self.loops
        n = checks.integer("loops", loops, 1)
        if n > self.loops and self.extra_applications == "error" and self.has_nlls:
            raise ValueError(
                f"loops={n}: {where} was trained with {self.loops} applications per shared block, and "
                f"extra_applications='error' refuses more (an NLL exists for each trained application "
                f"only). Use loops <= {self.loops}, or build the model with extra_applications='last' "
                f"or 'cycle' to reuse the trained NLLs."
            )
        return n

    def groups(self, i: int, loops: int | None = None) -> int:
        """Attention groups of application i: G1 on a block's first pass, G2 on its later passes."""
        return self.groups_recursive if i % (loops or self.loops) else self.groups_first

    def application(
        self, i: int, num_tokens: int, device, loops: int | None = None
    ) -> tuple[SReTBlock, int, torch.Tensor | None]:
        """Shared block, group count and token permutation of application i (each block `loops` times)."""
        n = loops or self.loops
        groups, perm = self.groups(i, n), None
        if i % n and groups > 1:  # a recursive pass; global attention ignores token order
            perm = token_permutation(num_tokens, self.shuffle, self.training, self.seed + i, device)
        return self.blocks[i // n], groups, perm

    def trained_application(self, i: int, loops: int | None = None) -> int:
        """The trained application whose NLL application i uses (see `extra_applications`)."""
        block, j = divmod(i, loops or self.loops)
        if j >= self.loops:
            j = self.loops - 1 if self.extra_applications == "last" else j % self.loops
        return block * self.loops + j

    def drop_rate(self, i: int, loops: int | None = None) -> float:
        """Drop-path rate of application i: its trained one, the block's last for an extra one."""
        block, j = divmod(i, loops or self.loops)
        return self.drop_path_rates[block * self.loops + min(j, self.loops - 1)]

    def _apply_one(self, x, x0, block, nll, groups, perm, drop_prob):
        if x0 is not None:  # recall: x <- x + x0, or LN(x) + x0 with state_norm
            x = self.state_norm(x) + x0
        return nll(block(x, groups, perm, drop_prob))

    def states(self, x: torch.Tensor, loops: int | None = None):
        """Yield the state after every application, each a (B, C, H, W) map.

        x: (B, C_in, H_in, W_in), the previous stage's map (the embedded image for stage 1).
        """
        n = self.check_loops(loops)
        x = self.downsample(x)  # (B, C, H, W)
        h, w = x.shape[-2:]
        x = x0 = rearrange(x, "b c h w -> b (h w) c")
        for i in range(len(self.blocks) * n):
            block, groups, perm = self.application(i, x.shape[1], x.device, n)
            nll = self.nlls[self.trained_application(i, n) // self.nll_share]
            args = (x, x0 if self.recall and i > 0 else None, block, nll, groups, perm, self.drop_rate(i, n))
            if self.grad_checkpointing and torch.is_grad_enabled():
                # the permutation is drawn outside, and checkpoint replays the RNG state for drop
                # path, so the recomputed forward is the same computation: identical gradients
                x = checkpoint(self._apply_one, *args, use_reentrant=False)
            else:
                x = self._apply_one(*args)
            yield rearrange(x, "b (h w) c -> b c h w", h=h, w=w)

    def forward(self, x: torch.Tensor, loops: int | None = None) -> torch.Tensor:
        """(B, C_in, H_in, W_in) -> (B, C, H, W): the state after the last application."""
        return deque(self.states(x, loops), maxlen=1).pop()  # run them all, keep only the last
