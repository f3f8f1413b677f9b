"""Named SReT variants, registered with timm on `import sret_mini`.

Each released model is an `SReTConfig` in `sret_mini.variants.VARIANTS`; the `@register_model`
functions below are the timm entry points, so `timm.create_model("sret_t", num_classes=10)` works
once `sret_mini` is imported. Pretrained tags name the authors' releases (`sret_t.in1k`,
`sret_t.dist_in1k`, ...). The files are on Google Drive (links in each config's `notes`) and cannot
be fetched automatically: download one and pass it with `checkpoint_path=` (or timm's
`pretrained_cfg_overlay=dict(file=...)`).
"""

from __future__ import annotations

import csv
import json
from importlib import resources

import timm
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model, resolve_pretrained_cfg

from .convert import adapt_state_dict
from .engine.checkpoint import ADAPTED, CHECKSUM_KEY, load_checkpoint, verified
from .model import SReT
from .variants import VARIANTS

_DRIVE = "https://drive.google.com/file/d/{}/view"


def _base_cfg(size: int, num_classes: int, **kwargs) -> dict:
    return dict(
        url="",
        num_classes=num_classes,
        input_size=(3, size, size),
        crop_pct=0.875 if size == 224 else 1.0,
        interpolation="bicubic",
        mean=IMAGENET_DEFAULT_MEAN,
        std=IMAGENET_DEFAULT_STD,
        first_conv="patch_embed.conv1",
        classifier="head",
        license="mit",
        paper_ids="arXiv:2111.05297",
        paper_name="Sliced Recursive Transformer",
        **kwargs,
    )


def _small_cfg(size: int) -> dict:
    """A sret_mini variant for small images: no pretrained weights."""
    return _base_cfg(size, 10, notes=("no pretrained weights: a sret_mini variant, train it with sret_mini.train",))


def official_table() -> list[dict]:
    """The authors' released variants (official_variants.csv): name, size, exact params and MACs, top-1,
    and the id of the file on Google Drive (empty: not released)."""
    text = resources.files("sret_mini").joinpath("official_variants.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    for row in rows:
        for key in ("input_size", "params", "macs"):
            row[key] = int(row[key])
        for key in ("readme_top1", "mlp_ratio", "nll_mlp_ratio"):
            row[key] = float(row[key])
        for key in ("base_dims", "heads", "depth", "unique_blocks", "groups_first", "groups_recursive"):
            row[key] = json.loads(row[key])
    return rows


def official_files() -> list[dict]:
    """Every released file: its timm name (`sret_t.dist_in1k`), the authors' file name, its Google
    Drive address (None: not released) and the ImageNet-1k top-1 the authors' README reports.

    Read from official_variants.csv; a distilled release is the `dist_in1k` tag of its
    architecture, the others `in1k`.
    """
    files = []
    for row in official_table():
        tag = "dist_in1k" if "distill" in row["official_name"] else "in1k"
        url = _DRIVE.format(row["drive_file_id"]) if row["drive_file_id"] else None
        files.append(dict(timm_name=f"{row['sret_mini_name']}.{tag}", file=f"{row['official_name']}.pth", url=url,
                          top1=row["readme_top1"], input_size=row["input_size"]))  # fmt: skip
    return files


def _official_cfg(release: dict) -> dict:
    """timm's pretrained config of one release: where its file is and what the authors report."""
    where = release["url"] or "not released (no link in the authors' README)"
    notes = (f"official file {release['file']}: {where}", f"reported ImageNet-1k top-1 {release['top1']}")
    size = release["input_size"]
    return _base_cfg(size, 1000, pool_size=(size // 32, size // 32), origin_url="https://github.com/szq0214/SReT",
                     notes=notes)  # fmt: skip


default_cfgs = generate_default_cfgs({
    **{release["timm_name"]: _official_cfg(release) for release in official_files()},
    "sret_t_cifar": _small_cfg(32),
    "sret_t_cifar_noslice": _small_cfg(32),
    "sret_t_cifar_norec": _small_cfg(32),
    "sret_nano": _small_cfg(16),
    "sret_deep100": _base_cfg(224, 1000, notes=("no pretrained weights: this project's 100-layer SReT",)),
    "sret_deep1000": _base_cfg(224, 1000, notes=("no pretrained weights: this project's 1000-layer SReT",)),
})  # fmt: skip


def checkpoint_filter_fn(state_dict: dict, model: SReT) -> dict:
    """timm's hook for pretrained files: official layout -> ours, position embedding resized."""
    state_dict = dict(state_dict)
    adapt_state_dict(state_dict, model, variants=VARIANTS)
    return state_dict


def _adapt_on_load(module, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
    """`load_state_dict` pre-hook: a created model also takes the authors' layout and other grids,
    and a state dict saved by `save_atomic` (checksum included) is checked before it is loaded.

    This is what `model.load_state_dict(...)` and `timm.create_model(..., checkpoint_path=...)`
    rely on. `load_checkpoint` adapts the dict itself (it needs the converted keys for its error
    messages) and marks it, so a dict is converted once on every route.
    """
    if CHECKSUM_KEY in state_dict:
        verified(dict(state_dict), "the state dict given to load_state_dict")
        del state_dict[CHECKSUM_KEY]
    if local_metadata.get(ADAPTED):
        return
    adapt_state_dict(state_dict, module, prefix=prefix, strict=strict, variants=VARIANTS)


def _create(variant: str, pretrained: bool = False, **kwargs) -> SReT:
    if pretrained:
        cfg = resolve_pretrained_cfg(variant, kwargs.get("pretrained_cfg"), kwargs.get("pretrained_cfg_overlay"))
        if not (cfg.file or cfg.url or cfg.state_dict or cfg.hf_hub_id):
            raise ValueError(
                f"{variant}{'.' + cfg.tag if cfg.tag else ''}: no weights can be downloaded automatically "
                f"({cfg.notes[0] if cfg.notes else 'no official file'}). With a checkpoint file, pass it: "
                f"sret_mini.create_model({variant!r}, checkpoint_path='FILE.pth') or "
                f"timm.create_model({variant!r}, pretrained=True, pretrained_cfg_overlay=dict(file='FILE.pth'))."
            )
    model = build_model_with_cfg(
        SReT,
        variant,
        pretrained,
        model_cfg=VARIANTS[variant],
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(feature_cls="getter", out_indices=(0, 1, 2)),
        **kwargs,
    )
    model.register_load_state_dict_pre_hook(_adapt_on_load)
    return model


@register_model
def sret_t(pretrained: bool = False, **kwargs) -> SReT:
    """SReT-T: 4.8M parameters, 1.1 GMACs at 224 px (sliced, loops of 2)."""
    return _create("sret_t", pretrained, **kwargs)


@register_model
def sret_lt(pretrained: bool = False, **kwargs) -> SReT:
    """SReT-LT: SReT-T with MLP ratio 4."""
    return _create("sret_lt", pretrained, **kwargs)


@register_model
def sret_lt_g16(pretrained: bool = False, **kwargs) -> SReT:
    """SReT-LT with the alternative slicing [16, 14, 1] / [1, 1, 1]."""
    return _create("sret_lt_g16", pretrained, **kwargs)


@register_model
def sret_s(pretrained: bool = False, **kwargs) -> SReT:
    """SReT-S: 20.9M parameters, 4.2 GMACs at 224 px."""
    return _create("sret_s", pretrained, **kwargs)


@register_model
def sret_t_noslice(pretrained: bool = False, **kwargs) -> SReT:
    """SReT-T without sliced attention (global attention in every application)."""
    return _create("sret_t_noslice", pretrained, **kwargs)


@register_model
def sret_lt_noslice(pretrained: bool = False, **kwargs) -> SReT:
    """SReT-LT without sliced attention."""
    return _create("sret_lt_noslice", pretrained, **kwargs)


@register_model
def sret_s_noslice(pretrained: bool = False, **kwargs) -> SReT:
    """SReT-S without sliced attention."""
    return _create("sret_s_noslice", pretrained, **kwargs)


@register_model
def sret_t_noslice_384(pretrained: bool = False, **kwargs) -> SReT:
    """SReT-T without slices at 384 px (the authors' distilled fine-tuned release)."""
    return _create("sret_t_noslice_384", pretrained, **kwargs)


@register_model
def sret_s_noslice_384(pretrained: bool = False, **kwargs) -> SReT:
    """SReT-S without slices at 384 px."""
    return _create("sret_s_noslice_384", pretrained, **kwargs)


@register_model
def sret_s_noslice_512(pretrained: bool = False, **kwargs) -> SReT:
    """SReT-S without slices at 512 px."""
    return _create("sret_s_noslice_512", pretrained, **kwargs)


@register_model
def sret_t_cifar(pretrained: bool = False, **kwargs) -> SReT:
    """SReT-T for 32 px images: stride-2 stem (16x16 / 8x8 / 4x4 tokens), 10 classes by default."""
    return _create("sret_t_cifar", pretrained, **kwargs)


@register_model
def sret_t_cifar_noslice(pretrained: bool = False, **kwargs) -> SReT:
    """`sret_t_cifar` with global attention in every application."""
    return _create("sret_t_cifar_noslice", pretrained, **kwargs)


@register_model
def sret_t_cifar_norec(pretrained: bool = False, **kwargs) -> SReT:
    """`sret_t_cifar` without recursion: every block applied once, NLLs twice as wide (equal parameters)."""
    return _create("sret_t_cifar_norec", pretrained, **kwargs)


@register_model
def sret_deep100(pretrained: bool = False, **kwargs) -> SReT:
    """100 virtual layers (10 shared blocks x 10 loops) in 14.9M parameters."""
    return _create("sret_deep100", pretrained, **kwargs)


@register_model
def sret_deep1000(pretrained: bool = False, **kwargs) -> SReT:
    """1000 virtual layers (10 shared blocks x 100 loops, NLLs shared by 10 applications) in 14.9M parameters."""
    return _create("sret_deep1000", pretrained, **kwargs)


@register_model
def sret_nano(pretrained: bool = False, **kwargs) -> SReT:
    """A 0.4M-parameter SReT for 16-32 px images on a laptop CPU (the embedded default)."""
    return _create("sret_nano", pretrained, **kwargs)


# ---------------------------------------------------------------------------------------------
# the package's entry points


def create_model(name: str, pretrained: bool = False, checkpoint_path: str | None = None, **kwargs):
    """`timm.create_model`, plus `checkpoint_path=` loading official or sret_mini files safely.

    Example:
        >>> model = create_model("sret_t", num_classes=10, img_size=64)
        >>> model = create_model("sret_t", checkpoint_path="SReT_T.pth")  # the authors' file
    """
    model = timm.create_model(name, pretrained=pretrained, **kwargs)
    if checkpoint_path is not None:
        load_checkpoint(model, checkpoint_path)
    return model


def list_models() -> list[str]:
    """Names of the SReT variants registered by sret_mini."""
    return list(VARIANTS)
