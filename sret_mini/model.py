"""The SReT network: conv stem -> position embedding -> three recursive stages -> pooled head.

Shapes for SReT-T at 224 px::

    image (B, 3, 224, 224)
      -> ConvStem, stride 8                 (B, 64, 28, 28)  + learnable 2-D position embedding
      -> stage 1: 2 shared blocks x 2 loops (B, 64, 28, 28)
      -> pool + stage 2: 5 blocks x 2 loops (B, 128, 14, 14)
      -> pool + stage 3: 3 blocks x 2 loops (B, 256, 7, 7)
      -> global average pool -> LayerNorm -> Linear

Depth is chosen at call time too: ``model(x, loops=n)`` applies every shared block n times
instead of the trained count (the rule for the per-application NLLs is `SReTConfig.extra_applications`),
and ``model.forward_applications(x)`` returns the head's output after every application of the last
stage, for a loss at each one.

There is no class token. The class implements timm's model contract (forward_features /
forward_head, reset_classifier, group_matcher, set_grad_checkpointing, forward_intermediates,
feature_info), so timm's training, feature-extraction and fine-tuning tools work on it.
"""

from __future__ import annotations

import torch
from einops import rearrange
from timm.layers import trunc_normal_
from timm.models._features import feature_take_indices
from torch import nn

from . import checks
from .blocks import LN_EPS, RecursiveStage
from .layers import ConvStem, resize_pos_embed
from .model_config import SHUFFLE_POLICIES, SReTConfig


class SReT(nn.Module):
    """Sliced Recursive Transformer.

    Args:
        cfg: the architecture (default: SReT-T); see `SReTConfig`.
        **overrides: fields of the config to change, e.g. ``num_classes=10, img_size=64,
            shuffle="none"``; ``loops=n`` builds every shared block to be applied n times (with an
            NLL per application); ``device`` and ``dtype`` place the parameters (as timm's models
            accept them).

    The forward passes take ``loops`` too: an int for every stage or a tuple with one entry per
    stage (None: as built) runs each shared block that many times at this call, with the same
    parameters (see `SReTConfig.extra_applications` for the NLLs beyond the trained count).

    Example:
        >>> model = SReT(num_classes=10, img_size=64)
        >>> model(torch.randn(2, 3, 64, 64)).shape
        torch.Size([2, 10])
        >>> model(torch.randn(2, 3, 64, 64), loops=4).shape  # twice the trained depth
        torch.Size([2, 10])
        >>> model.forward_applications(torch.randn(2, 3, 64, 64)).shape  # 3 blocks x 2 loops
        torch.Size([6, 2, 10])
    """

    def __init__(self, cfg: SReTConfig | None = None, device=None, dtype=None, **overrides):
        super().__init__()
        cfg = (cfg or SReTConfig()).updated(**overrides)
        self.cfg = cfg
        self.num_classes = cfg.num_classes
        self.in_chans = cfg.in_chans
        self.global_pool = cfg.global_pool
        self.num_features = self.head_hidden_size = cfg.dims[-1]

        self.patch_embed = ConvStem(cfg.in_chans, cfg.dims[0], cfg.stem_stride)
        grid = cfg.grids()[0]
        self.pos_embed = nn.Parameter(torch.zeros(1, cfg.dims[0], *grid))
        self.pos_drop = nn.Dropout(cfg.drop_rate)

        # stochastic depth grows linearly with the position of the application in the network
        # (the authors' SReT.py indexes it by shared block instead)
        rates = torch.linspace(0, cfg.drop_path_rate, sum(cfg.depth), device="cpu").split(list(cfg.depth))
        self.stages = nn.Sequential(
            *(
                RecursiveStage(
                    dim=cfg.dims[s],
                    heads=cfg.heads[s],
                    unique_blocks=cfg.unique_blocks[s],
                    loops=cfg.loops[s],
                    groups_first=cfg.groups_first[s],
                    groups_recursive=cfg.groups_recursive[s],
                    mlp_ratio=cfg.mlp_ratio,
                    nll_mlp_ratio=cfg.nll_mlp_ratio,
                    drop_path_rates=rates[s].tolist(),
                    in_dim=cfg.dims[s - 1] if s > 0 else None,
                    drop=cfg.drop_rate,
                    attn_drop=cfg.attn_drop_rate,
                    shuffle=cfg.shuffle,
                    seed=_stage_seed(cfg.shuffle_seed, s),
                    nll=cfg.nll,
                    learnable_residuals=cfg.lrc,
                    nll_share=cfg.nll_share,
                    extra_applications=cfg.extra_applications,
                    recall=cfg.recall,
                    state_norm=cfg.state_norm,
                )
                for s in range(cfg.num_stages)
            )
        )
        self.feature_info = [
            dict(num_chs=cfg.dims[s], reduction=cfg.stem_stride * 2**s, module=f"stages.{s}")
            for s in range(cfg.num_stages)
        ]
        self.norm = nn.LayerNorm(self.num_features, eps=LN_EPS)
        self.head_drop = nn.Dropout(cfg.drop_rate)
        self.head = nn.Linear(self.num_features, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()

        # as the official code: truncated-normal position embedding, PyTorch's default elsewhere
        trunc_normal_(self.pos_embed, std=0.02)
        if device is not None or dtype is not None:
            self.to(device=device, dtype=dtype)

    # ---------------------------------------------------------------------------------------
    # forward
    def _check_input(self, x: torch.Tensor) -> None:
        checks.image_batch(x, self.in_chans)
        self.cfg.check_input_size(tuple(x.shape[-2:]))

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        x = self.patch_embed(x)  # (B, C, H/8, W/8)
        return self.pos_drop(x + resize_pos_embed(self.pos_embed, x.shape[-2:]))

    def _call_loops(self, loops) -> tuple[int, ...]:
        """Applications per shared block of every stage at this call, checked before torch runs."""
        if not isinstance(loops, (tuple, list)):
            loops = (loops,) * len(self.stages)
        elif len(loops) != len(self.stages):
            raise ValueError(
                f"loops={tuple(loops)} has {len(loops)} entries but the model has {len(self.stages)} stages: "
                "give an int for every stage or one entry per stage (None keeps a stage as built)"
            )
        return tuple(stage.check_loops(n, f"stage {s + 1}") for s, (stage, n) in enumerate(zip(self.stages, loops)))

    def forward_features(self, x: torch.Tensor, loops: int | tuple | None = None) -> torch.Tensor:
        """(B, in_chans, H, W) images -> (B, C, H/32, W/32) feature map of the last stage.

        `loops`: applications of every shared block at this call (an int, one per stage, or None).
        """
        loops = self._call_loops(loops)
        x = self._embed(x)
        for stage, n in zip(self.stages, loops):
            x = stage(x, n)
        return x

    def forward_applications(self, x: torch.Tensor, loops: int | tuple | None = None) -> torch.Tensor:
        """The head's output after every application of the last stage, for a loss at each one.

        The earlier stages run as in `forward`; returns (A, B, num_classes), or (A, B, N,
        num_classes) per token with global_pool="", where A = unique_blocks * loops of the last
        stage. The last entry is `forward(x, loops)`.
        """
        *early, last = self._call_loops(loops)
        x = self._embed(x)
        for stage, n in zip(self.stages[:-1], early):
            x = stage(x, n)
        return torch.stack([self.forward_head(state) for state in self.stages[-1].states(x, last)])

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Feature map -> logits (B, num_classes), or the normalised pooled features if pre_logits."""
        if self.global_pool == "avg":
            x = x.mean(dim=(2, 3))  # (B, C)
        else:
            x = rearrange(x, "b c h w -> b (h w) c")  # no pooling: one prediction per token
        x = self.head_drop(self.norm(x))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor, loops: int | tuple | None = None) -> torch.Tensor:
        """(B, in_chans, H, W) images -> (B, num_classes) logits (at a call-time depth with `loops`)."""
        return self.forward_head(self.forward_features(x, loops))

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | list[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ):
        """Feature maps after the selected stages (timm's feature-extraction interface).

        `indices`: last n stages if an int, these stages if a list, all if None. `norm` is accepted
        for timm compatibility; the final LayerNorm acts on pooled features only, so it is not applied.
        """
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt={output_fmt!r}: SReT feature maps are 'NCHW'")
        take, max_index = feature_take_indices(len(self.stages), indices)
        stages = self.stages[: max_index + 1] if stop_early else self.stages
        intermediates = []
        x = self._embed(x)
        for i, stage in enumerate(stages):
            x = stage(x)
            if i in take:
                intermediates.append(x)
        return intermediates if intermediates_only else (x, intermediates)

    def prune_intermediate_layers(
        self, indices: int | list[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ):
        """Drop the stages after the last selected one (and the head), for feature extraction."""
        take, max_index = feature_take_indices(len(self.stages), indices)
        self.stages = self.stages[: max_index + 1]
        if max_index < self.cfg.num_stages - 1:
            self.num_features = self.head_hidden_size = self.feature_info[max_index]["num_chs"]
            prune_norm = prune_head = True
        if prune_norm:
            self.norm = nn.Identity()
        if prune_head:
            self.reset_classifier(0, "")
        return take

    # ---------------------------------------------------------------------------------------
    # timm model contract
    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return {"pos_embed"}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        """Parameter groups for layer-wise learning-rate decay: stem, then each stage, then the head."""
        return dict(stem=r"^pos_embed|^patch_embed", blocks=[(r"^stages\.(\d+)", None), (r"^norm", (99999,))])

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block application in the backward pass instead of storing its activations."""
        for stage in self.stages:
            stage.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        if global_pool is not None:
            if global_pool not in ("avg", ""):
                raise ValueError(f"global_pool={global_pool!r}: SReT supports 'avg' or '' (no pooling)")
            self.global_pool = global_pool
        self.num_classes = num_classes
        ref = self.norm.weight if isinstance(self.norm, nn.LayerNorm) else self.pos_embed
        self.head = (
            nn.Linear(self.num_features, num_classes, device=ref.device, dtype=ref.dtype)
            if num_classes > 0
            else nn.Identity()
        )

    # ---------------------------------------------------------------------------------------
    # SReT-specific
    def set_shuffle(self, policy: str, seed: int | None = None) -> None:
        """Change the token-permutation policy of the recursive applications ("train", "random", "none").

        `seed` also changes the fixed evaluation permutations of the "train" policy (`shuffle_seed`).
        """
        if policy not in SHUFFLE_POLICIES:
            raise ValueError(f"shuffle={policy!r}: choose one of {SHUFFLE_POLICIES}")
        for s, stage in enumerate(self.stages):
            stage.shuffle = policy
            if seed is not None:
                stage.seed = _stage_seed(seed, s)

    def block_applications(self, loops: int | tuple | None = None):
        """Yield (stage, application, shared block index, groups) for every block application.

        `loops` as in `forward`: the schedule of a call at that depth (default: as built).
        """
        for s, (stage, n) in enumerate(zip(self.stages, self._call_loops(loops))):
            for i in range(len(stage.blocks) * n):
                yield s, i, i // n, stage.groups(i, n)


def _stage_seed(shuffle_seed: int, stage: int) -> int:
    """Seed of a stage's fixed evaluation permutations (application i adds i)."""
    return shuffle_seed * 1_000_003 + 1000 * stage
