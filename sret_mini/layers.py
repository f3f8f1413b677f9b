"""Small building blocks: the convolutional stem, the pooling between stages, the position embedding.

The MLP and drop path come from timm (`timm.layers.Mlp`, `timm.layers.drop_path`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvStem(nn.Module):
    """Three 3x3 convolutions, each followed by BatchNorm and ReLU, with widths C/2, C, C.

    The first log2(stride) convolutions have stride 2: stride 8 turns a 224 px image into a 28x28
    grid of C-dimensional tokens (the released models); stride 2 keeps 32 px CIFAR images at 16x16.
    Module names (conv1, bn1, ...) match the official checkpoints.
    """

    def __init__(self, in_chans: int, dim: int, stride: int = 8):
        super().__init__()
        strides = [2 if i < stride.bit_length() - 1 else 1 for i in range(3)]
        self.conv1 = nn.Conv2d(in_chans, dim // 2, 3, stride=strides[0], padding=1)
        self.bn1 = nn.BatchNorm2d(dim // 2)
        self.conv2 = nn.Conv2d(dim // 2, dim, 3, stride=strides[1], padding=1)
        self.bn2 = nn.BatchNorm2d(dim)
        self.conv3 = nn.Conv2d(dim, dim, 3, stride=strides[2], padding=1)
        self.bn3 = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, in_chans, H, W) -> (B, C, H/s, W/s)
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.relu(self.bn3(self.conv3(x)))


class ConvPooling(nn.Module):
    """Downsampling between stages (from PiT): a depthwise 3x3 convolution with stride 2.

    Each input channel gets out_dim / in_dim filters, so the width grows (x2 in every release)
    while the token grid halves.
    """

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.conv = nn.Conv2d(in_dim, out_dim, 3, stride=2, padding=1, groups=in_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C', H/2, W/2)
        return self.conv(x)


def resize_pos_embed(pos_embed: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Bicubically resize a (1, C, H, W) position embedding to a (1, C, h, w) grid."""
    if tuple(pos_embed.shape[-2:]) == tuple(grid):
        return pos_embed
    dtype = pos_embed.dtype
    resized = F.interpolate(pos_embed.float(), size=tuple(grid), mode="bicubic", align_corners=False)
    return resized.to(dtype)


def lrc(learnable: bool = True) -> nn.Parameter | None:
    """A learnable residual coefficient: one scalar, initialised to 1 (None: a plain residual)."""
    return nn.Parameter(torch.ones(1)) if learnable else None


def residual(x: torch.Tensor, fx: torch.Tensor, skip: nn.Parameter | None, scale: nn.Parameter | None):
    """skip * x + scale * f(x) with learnable residual coefficients, or plain x + f(x) without."""
    return x + fx if skip is None else skip * x + scale * fx
