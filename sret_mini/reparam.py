"""Depth the other way: train ViT blocks with K parallel branches, merge them into one path.

SReT adds virtual depth without parameters. Zhou, Chaudhary and Datta, "Rethinking Vision
Transformer Depth via Structural Reparameterization" (arXiv 2511.19718, 2025) remove depth instead:
they train ViT blocks with parallel branches and merge the branches exactly into a single path for
inference. Their abstract reports that ViT-Tiny keeps its ImageNet-1K accuracy with 6, 4 or 3
layers instead of 12, with up to 37% lower latency on mobile CPUs, and names three ingredients:

1. LayerNorm is extracted from the branches, so that the branches can merge;
2. multi-head attention is written in a blockwise, non-concatenated form;
3. the branches are joined gradually during training at the inputs of the non-linear parts, so
   that FFN and attention branches merge with no approximation at test time.

The abstract names the ingredients, not their details: everything else in this module (the
joining rule, the choice of q, k and v as the joined inputs of attention, averaging the branches,
the schedule, mean pooling) is sret_mini's own construction, designed so that the merge is exact.
It is not the authors' code, and it reproduces none of their numbers.

Why the merge is exact. Hidden unit i of FFN branch k computes GELU(h_k,i) and writes it to the
output through column i of fc2_k. Without joining, K branches are already one FFN, but one with
K * hidden units: exact, yet no smaller. Joining pulls every branch's pre-activation to the
branches' mean, h_k <- (1 - lam) h_k + lam * mean_j h_j. At lam = 1 the K copies of unit i get the
same input, so they *are* the same unit and their fc2 columns combine into one: an FFN of the
width of one branch, with fc1 = mean_k fc1_k and fc2 = mean_k fc2_k (the block averages its
branches' outputs, so the columns average rather than add).
Attention is the same argument one level up: each head is a unit whose inputs are its q, k and v,
and the blockwise form out = sum_h W_o^h head_h makes each head's output weights a separate block.
Once q, k and v are joined, the K copies of head h are the same head and their blocks W_o^h
combine (average) into one.
LayerNorm sits in front of the branches, shared; at merge time its scale and shift fold into the
linear layers that read it (see `fold_layernorm`), leaving a parameter-free normalisation.

Usage (a training loop sketch)::

    model = create_branched(depth=3, branches=2, dim=192, heads=3)
    schedule = JoiningSchedule(model)       # lam: 0 -> 1 over the middle half of training
    for epoch in range(epochs):
        schedule.step(epoch / epochs)
        ...                                 # train one epoch as usual
    finish_joining(model)                   # lam = 1 (where the schedule ends anyway)
    plain = merge(model)                    # a plain 3-block ViT, same outputs within 1e-5
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from einops import rearrange
from timm.layers import Mlp, trunc_normal_
from torch import nn

from . import checks
from .blocks import LN_EPS


def join(h: torch.Tensor, lam: torch.Tensor | float) -> torch.Tensor:
    """Move each branch's copy of a quantity a fraction `lam` of the way to the branches' mean.

    h: (K, ...) the same quantity (a pre-activation) computed by K branches; returns the same shape.
    lam = 0 leaves the branches independent; lam = 1 hands every branch exactly the mean (0 * h_k
    vanishes), so the non-linearity that follows sees one input K times.
    """
    return (1 - lam) * h + lam * h.mean(dim=0, keepdim=True)


# -------------------------------------------------------------------------------------------------
# ingredient 1: LayerNorm outside the branches, its affine part folded into the next linear layer
def fold_affine(norm: nn.LayerNorm, weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight (out, C) and bias (out,) of a linear layer that reads LN(x), rewritten to read n(x).

    LN(x) = gamma * n(x) + beta, with n the plain normalisation, so
    W LN(x) + b = (W diag(gamma)) n(x) + (W beta + b).
    """
    return weight * norm.weight, bias + weight @ norm.bias


def fold_layernorm(norm: nn.LayerNorm, linear: nn.Linear) -> nn.Sequential:
    """LayerNorm followed by Linear -> the same function as LayerNorm without affine, then Linear."""
    plain = nn.LayerNorm(norm.normalized_shape, eps=norm.eps, elementwise_affine=False)
    folded = nn.Linear(linear.in_features, linear.out_features).to(linear.weight)
    with torch.no_grad():
        weight, bias = fold_affine(norm, linear.weight, linear.bias)
        folded.weight.copy_(weight)
        folded.bias.copy_(bias)
    return nn.Sequential(plain, folded)


# -------------------------------------------------------------------------------------------------
# ingredient 2: the output projection as a sum over heads
class HeadwiseProjection(nn.Module):
    """Attention's output projection in blockwise form: out = sum_h W_o^h head_h + b.

    The usual form concatenates the heads, (B, H, N, d) -> (B, N, H*d), and applies one Linear. Here
    the weight is kept as one (C, d) block per head, weight (H, C, d), and never concatenated: the
    same function (weight = rearrange(W, "c (h d) -> h c d")), but each head's share of the output
    is its own block, which is what lets identical heads of different branches add up.
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        # the initialisation of nn.Linear(dim, dim): uniform within 1/sqrt(fan_in)
        bound = 1 / math.sqrt(dim)
        self.weight = nn.Parameter(torch.empty(heads, dim, dim // heads).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(dim).uniform_(-bound, bound))

    def forward(self, heads: torch.Tensor) -> torch.Tensor:  # (B, H, N, d) -> (B, N, C)
        return torch.einsum("bhnd,hcd->bnc", heads, self.weight) + self.bias


# -------------------------------------------------------------------------------------------------
# ingredient 3: branches joined at the inputs of the non-linear parts
class BranchedAttention(nn.Module):
    """K parallel multi-head attentions whose q, k and v are joined before the attention core.

    The first non-linear operation of attention is not the softmax but the product q k^T: the
    logits are bilinear in q and k. Joining the logits would leave mean_k q_k k_k^T, which only
    one attention with K times wider heads can express; so this reconstruction joins q, k and v,
    the three inputs of softmax(q k^T / sqrt(d)) v. The values must be joined too: otherwise branch
    k contributes W_o,k A v_k = A z (W_o,k W_v,k)^T per head, and a sum of such products over the
    branches has rank up to K * d, more than one head of width d can hold. At lam = 1 every branch
    runs the same core, and the branches differ only in their (blockwise) output projections,
    which then average head by head.
    """

    def __init__(self, dim: int, heads: int, branches: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.ModuleList(nn.Linear(dim, 3 * dim) for _ in range(branches))
        self.proj = nn.ModuleList(HeadwiseProjection(dim, heads) for _ in range(branches))
        self.register_buffer("lam", torch.zeros(()))  # in the state dict: a checkpoint remembers it

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, N, C) normalised tokens -> (B, N, C)
        qkv = join(torch.stack([branch(z) for branch in self.qkv]), self.lam)  # (K, B, N, 3C)
        q, k, v = rearrange(qkv, "k b n (three h d) -> three (k b) h n d", three=3, h=self.heads)
        heads = rearrange(F.scaled_dot_product_attention(q, k, v), "(k b) h n d -> k b h n d", k=len(self.qkv))
        return torch.stack([proj(heads_k) for proj, heads_k in zip(self.proj, heads)]).mean(dim=0)


class BranchedMLP(nn.Module):
    """K parallel FFNs, fc2_k(GELU(h_k)) with h_k = fc1_k(z), joined at the input of the GELU."""

    def __init__(self, dim: int, hidden: int, branches: int):
        super().__init__()
        self.fc1 = nn.ModuleList(nn.Linear(dim, hidden) for _ in range(branches))
        self.fc2 = nn.ModuleList(nn.Linear(hidden, dim) for _ in range(branches))
        self.register_buffer("lam", torch.zeros(()))

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, N, C) normalised tokens -> (B, N, C)
        h = join(torch.stack([fc1(z) for fc1 in self.fc1]), self.lam)  # (K, B, N, hidden)
        # averaging (not summing) keeps the output's scale independent of K at initialisation
        return torch.stack([fc2(F.gelu(h_k)) for fc2, h_k in zip(self.fc2, h)]).mean(dim=0)


class BranchedBlock(nn.Module):
    """Pre-norm ViT block, each LayerNorm shared by the K branches behind it (trained, then merged).

    x = x + mean_k Attn_k(LN1(x))
    x = x + mean_k MLP_k(LN2(x))      branches joined inside, see BranchedAttention and BranchedMLP
    """

    def __init__(self, dim: int, heads: int, hidden: int, branches: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = BranchedAttention(dim, heads, branches)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = BranchedMLP(dim, hidden, branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, C) -> (B, N, C)
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


# -------------------------------------------------------------------------------------------------
# the single-path model that `merge` returns
class Attention(nn.Module):
    """Ordinary multi-head self-attention: q, k, v from one Linear, heads concatenated, projected."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, C) -> (B, N, C)
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        return self.proj(rearrange(F.scaled_dot_product_attention(q, k, v), "b h n d -> b n (h d)"))


class PlainBlock(nn.Module):
    """Pre-norm ViT block whose LayerNorms have no parameters (their affine parts were folded)."""

    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS, elementwise_affine=False)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS, elementwise_affine=False)
        self.mlp = Mlp(dim, hidden, act_layer=nn.GELU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, C) -> (B, N, C)
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """patches -> + position embedding -> blocks -> mean over tokens -> LayerNorm -> Linear.

    The same shell holds the branched blocks (training) and the plain ones (after `merge`). There is
    no class token, as in SReT: the tokens are averaged (a class token would merge just as well,
    being a parameter outside the blocks). `affine_norm=False` is the merged form of the final
    LayerNorm, whose scale and shift live in the head.
    """

    def __init__(
        self,
        blocks: list[nn.Module],
        *,
        dim: int,
        num_classes: int,
        img_size: int,
        patch_size: int,
        in_chans: int = 3,
        affine_norm: bool = True,
    ):
        super().__init__()
        self.img_size, self.patch_size, self.in_chans = img_size, patch_size, in_chans
        self.patch_embed = nn.Conv2d(in_chans, dim, patch_size, stride=patch_size)
        self.pos_embed = nn.Parameter(trunc_normal_(torch.zeros(1, (img_size // patch_size) ** 2, dim), std=0.02))
        self.blocks = nn.Sequential(*blocks)
        self.norm = nn.LayerNorm(dim, eps=LN_EPS, elementwise_affine=affine_norm)
        self.head = nn.Linear(dim, num_classes)

    def _check_input(self, x: torch.Tensor) -> None:
        checks.image_batch(x, self.in_chans)
        if tuple(x.shape[-2:]) != (self.img_size, self.img_size):
            raise ValueError(
                f"expected {self.img_size}x{self.img_size} images, got {x.shape[-2]}x{x.shape[-1]}: the position "
                f"embedding has one vector per patch of an {self.img_size}x{self.img_size} image. Resize the "
                f"images or create the model with img_size={x.shape[-1]}."
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, H, W) images -> (B, N, C) tokens after the last block."""
        self._check_input(x)
        x = rearrange(self.patch_embed(x), "b c h w -> b (h w) c") + self.pos_embed
        return self.blocks(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """(B, N, C) tokens -> (B, num_classes) logits, or the normalised pooled features if pre_logits."""
        x = self.norm(x.mean(dim=1))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# -------------------------------------------------------------------------------------------------
# entry points: create, join, merge
def create_branched(
    *,
    depth: int = 12,
    branches: int = 2,
    dim: int = 192,
    heads: int = 3,
    num_classes: int = 10,
    img_size: int = 32,
    patch_size: int = 4,
    mlp_ratio: float = 4.0,
    in_chans: int = 3,
) -> ViT:
    """A ViT whose `depth` blocks each have `branches` parallel attention and MLP branches.

    Joining starts at lam = 0 (independent branches); move it with `JoiningSchedule` or
    `set_joining`, end it with `finish_joining`, then `merge`.

    Example:
        >>> model = create_branched(depth=2, branches=3, dim=32, heads=4, img_size=16)
        >>> model(torch.randn(2, 3, 16, 16)).shape
        torch.Size([2, 10])
    """
    _check_arguments(
        depth=depth,
        branches=branches,
        dim=dim,
        heads=heads,
        num_classes=num_classes,
        img_size=img_size,
        patch_size=patch_size,
        mlp_ratio=mlp_ratio,
    )
    hidden = int(dim * mlp_ratio)
    blocks = [BranchedBlock(dim, heads, hidden, branches) for _ in range(depth)]
    return ViT(blocks, dim=dim, num_classes=num_classes, img_size=img_size, patch_size=patch_size, in_chans=in_chans)


def _nearest_multiple(value: int, step: int) -> int:
    return step * max(1, round(value / step))


def _check_arguments(*, depth, branches, dim, heads, num_classes, img_size, patch_size, mlp_ratio) -> None:
    """Fail early, naming the problem and the fix."""
    if branches < 1:
        raise ValueError(f"branches={branches}: a block needs at least one branch (branches=1 is an ordinary block)")
    if depth < 1:
        raise ValueError(f"depth={depth}: the model needs at least one block; use depth >= 1")
    if heads < 1:
        raise ValueError(f"heads={heads}: attention needs at least one head")
    if dim % heads:
        raise ValueError(
            f"dim={dim} is not divisible by heads={heads}: every head gets dim / heads channels. Use a dim that "
            f"is a multiple of heads (e.g. dim={_nearest_multiple(dim, heads)}) or a number of heads that divides dim."
        )
    if patch_size < 1:
        raise ValueError(f"patch_size={patch_size}: a patch is at least one pixel wide")
    if img_size % patch_size:
        raise ValueError(
            f"img_size={img_size} is not divisible by patch_size={patch_size}: the patches must tile the image. "
            f"Use an img_size that is a multiple of patch_size (e.g. img_size={_nearest_multiple(img_size, patch_size)}) "
            f"or a patch_size that divides img_size."
        )
    if num_classes < 1:
        raise ValueError(f"num_classes={num_classes}: the head needs at least one class")
    if int(dim * mlp_ratio) < 1:
        raise ValueError(f"mlp_ratio={mlp_ratio} gives the MLP no hidden units; use mlp_ratio >= 1 / dim")


def _joined_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (BranchedAttention, BranchedMLP))]


def set_joining(model: nn.Module, lam: float) -> None:
    """Set the joining coefficient of every branched attention and MLP: 0 independent, 1 joined."""
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam={lam}: the joining coefficient goes from 0 (independent) to 1 (joined)")
    for layer in _joined_layers(model):
        layer.lam.fill_(lam)


def joining(model: nn.Module) -> float:
    """The joining coefficient of the least joined layer: the merge is exact only when this is 1."""
    return min((float(layer.lam) for layer in _joined_layers(model)), default=1.0)


def finish_joining(model: nn.Module) -> None:
    """Put the schedule at its end (lam = 1): from here on the model merges exactly."""
    set_joining(model, 1.0)


class JoiningSchedule:
    """lam = 0 until `start`, rising linearly to 1 at `end`, then 1 (fractions of training).

    The branches first train independently, then join, and the last part of training runs in the
    joined form, so the merged network is exactly the one that was trained last (sret_mini's
    choice of schedule; the abstract says only that the branches join gradually).
    """

    def __init__(self, model: nn.Module, start: float = 0.25, end: float = 0.75):
        if not 0.0 <= start < end <= 1.0:
            raise ValueError(f"start={start}, end={end}: need 0 <= start < end <= 1 (fractions of training)")
        self.model, self.start, self.end = model, start, end

    def lam(self, progress: float) -> float:
        """The joining coefficient when a fraction `progress` of training is done."""
        return min(1.0, max(0.0, (progress - self.start) / (self.end - self.start)))

    def step(self, progress: float) -> float:
        """Set the model's joining for `progress` (e.g. epoch / epochs) and return it."""
        lam = self.lam(progress)
        set_joining(self.model, lam)
        return lam


def _mean(params) -> torch.Tensor:
    """The average of the K branches' copies of a parameter."""
    return torch.stack(list(params)).mean(dim=0)


@torch.no_grad()
def merged_state_dict(model: ViT) -> dict[str, torch.Tensor]:
    """The weights of the single-path model: branches averaged, LayerNorm affines folded forward."""
    sd = {k: model.state_dict()[k] for k in ("patch_embed.weight", "patch_embed.bias", "pos_embed")}
    for i, block in enumerate(model.blocks):
        attn, mlp = block.attn, block.mlp
        qkv = fold_affine(block.norm1, _mean(b.weight for b in attn.qkv), _mean(b.bias for b in attn.qkv))
        fc1 = fold_affine(block.norm2, _mean(f.weight for f in mlp.fc1), _mean(f.bias for f in mlp.fc1))
        sd |= {
            f"blocks.{i}.attn.qkv.weight": qkv[0],
            f"blocks.{i}.attn.qkv.bias": qkv[1],
            # the blockwise weight per head (H, C, d) is the concatenated one, seen in blocks
            f"blocks.{i}.attn.proj.weight": rearrange(_mean(p.weight for p in attn.proj), "h c d -> c (h d)"),
            f"blocks.{i}.attn.proj.bias": _mean(p.bias for p in attn.proj),
            f"blocks.{i}.mlp.fc1.weight": fc1[0],
            f"blocks.{i}.mlp.fc1.bias": fc1[1],
            f"blocks.{i}.mlp.fc2.weight": _mean(f.weight for f in mlp.fc2),
            f"blocks.{i}.mlp.fc2.bias": _mean(f.bias for f in mlp.fc2),
        }
    sd["head.weight"], sd["head.bias"] = fold_affine(model.norm, model.head.weight, model.head.bias)
    return sd


def merge(model: ViT) -> ViT:
    """The single-path ViT equal to a branched one: exact (up to rounding) once joining has finished.

    Before that (lam < 1, more than one branch) this returns the model the branches are heading
    for, which computes something else; a warning says so.
    """
    if not isinstance(model, ViT) or not all(isinstance(b, BranchedBlock) for b in model.blocks):
        raise ValueError("merge expects a model made by create_branched (a ViT of BranchedBlocks)")
    if joining(model) < 1.0 and any(len(b.attn.qkv) > 1 for b in model.blocks):
        warnings.warn(
            f"merging before joining has finished (lam={joining(model):.3g} < 1): the merged model is not "
            f"equal to the branched one. Call finish_joining(model) (and train on) before merge.",
            stacklevel=2,
        )
    blocks = [PlainBlock(b.norm1.normalized_shape[0], b.attn.heads, b.mlp.fc1[0].out_features) for b in model.blocks]
    plain = ViT(
        blocks,
        dim=model.head.in_features,
        num_classes=model.head.out_features,
        img_size=model.img_size,
        patch_size=model.patch_size,
        in_chans=model.in_chans,
        affine_norm=False,
    ).to(model.pos_embed)  # same device and dtype
    plain.load_state_dict(merged_state_dict(model))  # strict: every weight of the plain model is set
    return plain.train(model.training)


# -------------------------------------------------------------------------------------------------
# the other way to depth: recursion; and the network that either way deploys
def recursive(model: ViT, loops: int) -> ViT:
    """Apply every block of `model` `loops` times in a row: naive recursion, weights shared across depth.

    The repeated blocks are the same modules, so their parameters are stored once while the
    compute grows `loops` times. Changes `model` in place and returns it.
    """
    if loops < 1:
        raise ValueError(f"loops={loops}: every block is applied at least once (loops=1 leaves the model as it is)")
    model.blocks = nn.Sequential(*[block for block in model.blocks for _ in range(loops)])
    return model


def deploy(model: ViT) -> ViT:
    """The network that runs at inference: branches merged (see `merge`), shared blocks still shared.

    `merge` writes one plain block per block application; a block applied several times (see
    `recursive`) becomes one plain block applied as often, its weights stored once.
    """
    plain = merge(model)
    first: dict[int, int] = {}  # a block of `model` -> the index where it first runs
    for i, block in enumerate(model.blocks):
        first.setdefault(id(block), i)
    plain.blocks = nn.Sequential(*[plain.blocks[first[id(block)]] for block in model.blocks])
    return plain
