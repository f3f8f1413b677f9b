"""sret_mini: a readable, timm-native reproduction of the Sliced Recursive Transformer (SReT).

Importing the package registers every SReT variant with timm:

    >>> import sret_mini, timm
    >>> model = timm.create_model("sret_t", num_classes=10, img_size=64)
    >>> model = sret_mini.create_model("sret_t", checkpoint_path="SReT_T.pth")  # authors' weights

The paper's modules, one idea each, at the top level: `model_config` (`SReTConfig`, the
architecture), `layers` (stem, pooling), `attention` (sliced group self-attention), `blocks`
(shared block, NLL, recursive stage), `model` (the network), `variants` (the table of named
configurations), `registry` (their timm registration), `convert` (the authors' checkpoint
layout), `flops` (parameter and MAC counts). Around them: `engine` (training: the loop,
`TrainConfig`, run folders, checkpoint files, devices, precision, evaluation), `distill` (the
soft-label loss, teachers, soft-label banks), `data` (datasets), `cli` (the `sret-mini` command),
`reparam` and `profiling` (tools of chapters 9 and 10), `book` (what the chapters share).
"""

from .attention import SlicedGroupAttention, fixed_permutation
from .blocks import NLL, RecursiveStage, SReTBlock
from .convert import from_official, matching_variants, to_official
from .engine.checkpoint import load_checkpoint, load_file, save_atomic
from .engine.evaluate import evaluate
from .engine.loop import TrainResult, train
from .engine.train_config import RECIPES, TrainConfig
from .flops import count_macs, count_params
from .model import SReT
from .model_config import SHUFFLE_POLICIES, SReTConfig
from .registry import create_model, list_models, official_table
from .variants import VARIANTS

__version__ = "0.1.0"

__all__ = [
    "NLL",
    "RECIPES",
    "SHUFFLE_POLICIES",
    "VARIANTS",
    "RecursiveStage",
    "SReT",
    "SReTBlock",
    "SReTConfig",
    "SlicedGroupAttention",
    "TrainConfig",
    "TrainResult",
    "count_macs",
    "count_params",
    "create_model",
    "evaluate",
    "fixed_permutation",
    "from_official",
    "list_models",
    "load_checkpoint",
    "load_file",
    "matching_variants",
    "official_table",
    "save_atomic",
    "to_official",
    "train",
]
