"""sret_mini: a readable, timm-native reproduction of the Sliced Recursive Transformer (SReT).

Importing the package registers every SReT variant with timm:

    >>> import sret_mini, timm
    >>> model = timm.create_model("sret_t", num_classes=10, img_size=64)
    >>> model = sret_mini.create_model("sret_t", checkpoint_path="SReT_T.pth")  # authors' weights

Modules, one idea each: `config` (the dataclass), `layers` (stem, pooling), `attention` (sliced
group self-attention), `blocks` (shared block, NLL, recursive stage), `model` (the network),
`variants` (the table of named configurations), `registry` (their timm registration), `convert`
(official checkpoints), `checkpoint` (safe file I/O), `flops` (parameter and MAC counts).
"""

from .attention import SlicedGroupAttention, fixed_permutation
from .blocks import NLL, RecursiveStage, SReTBlock
from .checkpoint import load_checkpoint, load_file, save_atomic
from .config import SHUFFLE_POLICIES, SReTConfig
from .convert import from_official, matching_variants, to_official
from .flops import count_macs, count_params
from .model import SReT
from .registry import create_model, list_models, official_table
from .variants import VARIANTS

__version__ = "0.1.0"

__all__ = [
    "NLL",
    "SHUFFLE_POLICIES",
    "VARIANTS",
    "RecursiveStage",
    "SReT",
    "SReTBlock",
    "SReTConfig",
    "SlicedGroupAttention",
    "count_macs",
    "count_params",
    "create_model",
    "fixed_permutation",
    "from_official",
    "list_models",
    "load_checkpoint",
    "load_file",
    "matching_variants",
    "official_table",
    "save_atomic",
    "to_official",
]
