"""The table of SReT variants: one `SReTConfig` per name, the authors' released models first.

`registry` registers each name with timm; `convert` and `checkpoint` read the table (passed in)
to say which variant a checkpoint fits.
"""

from __future__ import annotations

from .model_config import SReTConfig

_T = SReTConfig(
    dims=(64, 128, 256), heads=(2, 4, 8), depth=(4, 10, 6), unique_blocks=(2, 5, 3),
    groups_first=(8, 4, 1), groups_recursive=(2, 1, 1), mlp_ratio=3.6, nll_mlp_ratio=1.0, drop_path_rate=0.1,
)  # fmt: skip
_S = _T.updated(dims=(126, 252, 504), heads=(3, 6, 12), mlp_ratio=3.0, nll_mlp_ratio=2.0, drop_path_rate=0.2)
_NO_SLICE = dict(groups_first=(1, 1, 1), groups_recursive=(1, 1, 1))

# The official drop-path defaults: 0.1 (T, LT) and 0.2 (S) in the sliced file, 0.0 for T/LT without slices.
VARIANTS: dict[str, SReTConfig] = {
    "sret_t": _T,
    "sret_lt": _T.updated(mlp_ratio=4.0),
    "sret_lt_g16": _T.updated(mlp_ratio=4.0, groups_first=(16, 14, 1), groups_recursive=(1, 1, 1)),
    "sret_s": _S,
    "sret_t_noslice": _T.updated(**_NO_SLICE, drop_path_rate=0.0),
    "sret_lt_noslice": _T.updated(**_NO_SLICE, mlp_ratio=4.0, drop_path_rate=0.0),
    "sret_s_noslice": _S.updated(**_NO_SLICE),
    "sret_t_noslice_384": _T.updated(**_NO_SLICE, drop_path_rate=0.0, img_size=384),
    "sret_s_noslice_384": _S.updated(**_NO_SLICE, img_size=384),
    "sret_s_noslice_512": _S.updated(**_NO_SLICE, img_size=512),
    # Small images (this project's variants, no official weights). A stride-2 stem keeps a 32 px
    # CIFAR image at 16x16 / 8x8 / 4x4 tokens, where stride 8 would leave 4x4 / 2x2 / 1x1.
    "sret_t_cifar": _T.updated(stem_stride=2, img_size=32, num_classes=10),
    "sret_t_cifar_noslice": _T.updated(**_NO_SLICE, stem_stride=2, img_size=32, num_classes=10),
    # No recursion at (nearly) equal parameters: the same 10 shared blocks applied once each. Its 10
    # NLLs get twice the hidden width, so they hold as many weights as the 20 NLLs of sret_t_cifar.
    # It keeps the first-pass slicing (8, 4, 1) and has no second pass to mix the slices: compare
    # recursion alone against sret_t_cifar_noslice with groups_first=(1, 1, 1) on both.
    "sret_t_cifar_norec": _T.updated(loops=1, nll_mlp_ratio=2.0, stem_stride=2, img_size=32, num_classes=10),
    # Extreme depth (this project's design: the abstract reports 100- and 1000-layer SReTs of 13-15M
    # parameters, not how they are built). 10 shared blocks at widths 96/192/384, NLLs of half width;
    # sret_deep1000 applies every block 100 times and lets 10 consecutive applications share an NLL,
    # so it has exactly the parameters of sret_deep100 (one NLL per application would need ~4x more).
    "sret_deep100": _T.updated(dims=(96, 192, 384), heads=(3, 6, 12), mlp_ratio=4.0, loops=10, nll_mlp_ratio=0.5),
    "sret_deep1000": _T.updated(
        dims=(96, 192, 384), heads=(3, 6, 12), mlp_ratio=4.0, loops=100, nll_mlp_ratio=0.5, nll_share=10
    ),
    # a 0.4M-parameter SReT for laptop-CPU experiments (half width, 4 shared blocks, 8 applications)
    "sret_nano": _T.updated(
        dims=(32, 64, 128),
        heads=(1, 2, 4),
        unique_blocks=(1, 2, 1),
        loops=2,
        groups_first=(4, 2, 1),
        stem_stride=2,
        img_size=16,
        num_classes=10,
        drop_path_rate=0.0,
    ),  # fmt: skip
}
