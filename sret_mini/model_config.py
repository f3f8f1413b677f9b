"""The one configuration object of an SReT network.

Every released variant is an `SReTConfig`; the named models in `sret_mini.registry` are thin
factories over it. The config is checked when it is made, so a wrong combination fails with a
`ValueError` that says what to change instead of failing later inside a reshape.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from . import checks

SHUFFLE_POLICIES = ("train", "random", "none")
EXTRA_APPLICATIONS = ("last", "cycle", "error")
STAGE_FIELDS = ("dims", "heads", "depth", "unique_blocks", "groups_first", "groups_recursive")


def _conv_out(size: int, stride: int = 2) -> int:
    """Output length of a 3x3 convolution with padding 1 and the given stride."""
    return (size - 1) // stride + 1


def stage_grids(img_size: tuple[int, int], stem_stride: int, num_stages: int) -> list[tuple[int, int]]:
    """Token grid (height, width) of every stage for an input of `img_size` pixels.

    The stem has three 3x3 convolutions of which the first log2(stem_stride) have stride 2; each
    later stage halves the grid with a stride-2 depthwise convolution (padding 1).
    """
    h, w = img_size
    for _ in range(stem_stride.bit_length() - 1):
        h, w = _conv_out(h), _conv_out(w)
    grids = [(h, w)]
    for _ in range(num_stages - 1):
        h, w = _conv_out(h), _conv_out(w)
        grids.append((h, w))
    return grids


def to_2tuple(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """(height, width) from an int or a pair of ints; anything else (a string, 2.5) is refused."""
    if isinstance(size, (str, bytes)) or not hasattr(size, "__len__"):
        return (checks.integer("img_size", size, 1),) * 2
    if len(size) != 2:
        raise ValueError(f"img_size must be an int or (height, width), got {size!r}")
    return tuple(checks.integer("img_size", s, 1) for s in size)


@dataclass(frozen=True)
class SReTConfig:
    """Architecture and regularisation of an SReT network (defaults: SReT-T at 224 px).

    The stage fields are tuples with one entry per stage.

    Stage fields:
        dims: token width C of the stage (official: base_dims * heads).
        heads: attention heads; dims must divide by heads.
        depth: block applications in the stage.
        unique_blocks: shared transformer blocks; each is applied depth / unique_blocks times in a
            row ("loops"), every application followed by its own non-shared NLL.
        groups_first: groups G1 of the first application of each shared block (contiguous slices
            of the raster-ordered tokens).
        groups_recursive: groups G2 of the later applications (after a token permutation, see
            `shuffle`); 1 means global attention.

    Other fields:
        mlp_ratio / nll_mlp_ratio: hidden width of the block MLP / NLL MLP, as a multiple of C.
        img_size: input size the position embedding is made for (other sizes are resized to).
        stem_stride: 8 for the released models (224 px -> 28x28 tokens); 2 or 4 for small images.
        shuffle: token permutation of the recursive applications.
            "train" (default): a fresh random permutation in training, one fixed seeded
            permutation per application in eval, so predictions are deterministic.
            "random": a fresh permutation on every call, in eval too (the official behaviour,
            which makes two predictions of the same image differ).
            "none": no permutation (recursive groups are contiguous slices too).
        shuffle_seed: seed of the fixed evaluation permutations of the "train" policy.
        nll: a non-shared NLL after every block application (False: naive recursion).
        nll_share: consecutive applications of a block that share one NLL (1 in every release; the
            1000-layer model uses 10 to keep its parameters within the paper's 13-15M).
        lrc: learnable residual coefficients (False: plain residuals x + f(x)).

    The depth can change at call time: ``model(x, loops=n)`` applies every shared block n times,
    more or fewer than `loops`, with no new parameters.

    Depth fields:
        extra_applications: which NLL an application beyond the trained count uses. Application
            j (0-based) of a shared block uses the NLL of the block's trained application j while
            j < loops (so fewer loops use the first n NLLs of each block); for j >= loops:
            "last" (default): the block's last trained NLL, every time: the extra applications
            iterate one fixed map, as a recurrent network does;
            "cycle": the NLL of trained application j mod loops: the trained NLLs in order again;
            "error": refuse (ValueError) a call with more loops than trained.
            An extra application drops paths at the rate of its block's last trained application.
            With nll=False nothing is per application and every rule accepts any n.
        recall: input injection (Bansal et al., 2022): before every application after a stage's
            first, add the stage's input tokens x0 (after its pooling; for stage 1 the stem output
            plus position embedding) to the state, x <- x + x0. Adds 0 parameters.
        state_norm: with recall, normalise the state first, x <- LN(x) + x0, one LayerNorm per
            stage shared by its applications; it keeps the state's scale bounded when the
            applications run far past the trained count. Adds 2 * C parameters per stage.
            Needs recall=True: it is the normalisation of the injection step, and without the
            injection it would be an extra LayerNorm between blocks, a different architecture.
    """

    dims: tuple[int, ...] = (64, 128, 256)
    heads: tuple[int, ...] = (2, 4, 8)
    depth: tuple[int, ...] = (4, 10, 6)
    unique_blocks: tuple[int, ...] = (2, 5, 3)
    groups_first: tuple[int, ...] = (8, 4, 1)
    groups_recursive: tuple[int, ...] = (2, 1, 1)
    mlp_ratio: float = 3.6
    nll_mlp_ratio: float = 1.0
    img_size: tuple[int, int] = (224, 224)
    in_chans: int = 3
    num_classes: int = 1000
    stem_stride: int = 8
    global_pool: str = "avg"
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.0
    shuffle: str = "train"
    shuffle_seed: int = 0
    nll: bool = True
    lrc: bool = True
    nll_share: int = 1
    extra_applications: str = "last"
    recall: bool = False
    state_norm: bool = False

    def __post_init__(self):
        # accept lists (from JSON or a CSV) and ints, store tuples so the config stays hashable
        for name in STAGE_FIELDS:
            values = getattr(self, name)
            values = (values,) if isinstance(values, (int, float, str)) else values
            object.__setattr__(self, name, tuple(checks.integer(name, v, 1) for v in values))
        object.__setattr__(self, "img_size", to_2tuple(self.img_size))
        self._validate()

    # derived quantities ---------------------------------------------------------------------
    @property
    def num_stages(self) -> int:
        return len(self.dims)

    @property
    def loops(self) -> tuple[int, ...]:
        """How many times each shared block is applied in a row, per stage."""
        return tuple(d // u for d, u in zip(self.depth, self.unique_blocks))

    def grids(self, img_size: int | tuple[int, int] | None = None) -> list[tuple[int, int]]:
        """Token grid of every stage for an input of `img_size` (default: the config's)."""
        size = self.img_size if img_size is None else to_2tuple(img_size)
        return stage_grids(size, self.stem_stride, self.num_stages)

    def updated(self, **changes) -> SReTConfig:
        """A copy with some fields changed. `loops=n` sets depth = unique_blocks * n in every stage."""
        loops = changes.pop("loops", None)
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown SReT option(s) {unknown}; valid options are {sorted(known | {'loops'})}")
        if loops is not None:
            if "depth" in changes:
                raise ValueError("give either depth or loops, not both (loops sets depth = unique_blocks * loops)")
            if not isinstance(loops, (tuple, list)):
                loops = (checks.integer("loops", loops, 1),) * len(changes.get("unique_blocks", self.unique_blocks))
            loops = tuple(checks.integer("loops", n, 1) for n in loops)
            unique = changes.get("unique_blocks", self.unique_blocks)
            changes["depth"] = tuple(u * n for u, n in zip(unique, loops, strict=True))
        return dataclasses.replace(self, **changes)

    # checks ---------------------------------------------------------------------------------
    def check_input_size(self, img_size: tuple[int, int]) -> None:
        """Raise ValueError unless every stage's token count divides by its group counts."""
        for s, (h, w) in enumerate(self.grids(img_size)):
            n = h * w
            for kind, g in (("groups_first", self.groups_first[s]), ("groups_recursive", self.groups_recursive[s])):
                if n % g:
                    size = self.nearest_input_size(img_size[0])
                    raise ValueError(
                        f"input size {img_size[0]}x{img_size[1]} gives stage {s + 1} a {h}x{w} grid of {n} "
                        f"tokens, which cannot be cut into {kind}={g} equal groups. Use an input size "
                        f"whose stage grids divide by the groups ({f'e.g. {size}x{size}' if size else 'none near'}), "
                        f"or change {kind} for stage {s + 1}."
                    )

    def fits(self, img_size: tuple[int, int]) -> bool:
        """Whether every stage's tokens divide into its groups at this input size."""
        grids = self.grids(img_size)
        return all(h * w % g == 0 for (h, w), gs in zip(grids, zip(self.groups_first, self.groups_recursive))
                   for g in gs)  # fmt: skip

    def nearest_input_size(self, size: int, reach: int = 512) -> int | None:
        """The square input size nearest to `size` that fits (see `fits`), or None within `reach` pixels."""
        for delta in range(reach):
            for candidate in (size - delta, size + delta):
                if candidate >= self.stem_stride * 2 ** (self.num_stages - 1) and self.fits((candidate, candidate)):
                    return candidate
        return None

    def _validate(self) -> None:
        n = len(self.dims)
        for name in STAGE_FIELDS:
            values = getattr(self, name)
            if len(values) != n:
                raise ValueError(f"{name} has {len(values)} entries but dims has {n}: give one entry per stage")
            if any(v < 1 for v in values):
                raise ValueError(f"{name}={values}: every entry must be a positive integer")
        for s in range(n):
            d, u, c, h = self.depth[s], self.unique_blocks[s], self.dims[s], self.heads[s]
            if d % u:
                lo, hi = (d // u) * u, (d // u + 1) * u
                raise ValueError(
                    f"stage {s + 1}: depth {d} is not a multiple of unique_blocks {u} (each shared block is "
                    f"applied depth / unique_blocks times); use depth {lo or u} or {hi}, or another unique_blocks"
                )
            if c % h:
                raise ValueError(
                    f"stage {s + 1}: width {c} is not divisible by {h} heads; choose a width that is a "
                    f"multiple of the head count (e.g. {h * max(1, round(c / h))})"
                )
            if s > 0 and c % self.dims[s - 1]:
                raise ValueError(
                    f"stage {s + 1}: width {c} must be a multiple of the previous stage's width "
                    f"{self.dims[s - 1]} (the pooling between stages is a depthwise convolution)"
                )
        if self.nll_share < 1 or any(loops % self.nll_share for loops in self.loops):
            raise ValueError(
                f"nll_share={self.nll_share} must be >= 1 and divide the loops {self.loops}: an NLL is shared by "
                "consecutive applications of the same block"
            )
        if self.dims[0] % 2:
            raise ValueError(
                f"dims[0]={self.dims[0]} must be even: the stem's first convolution has dims[0] / 2 channels"
            )
        if self.stem_stride not in (1, 2, 4, 8):
            raise ValueError(f"stem_stride={self.stem_stride}: the three-convolution stem supports 1, 2, 4 or 8")
        self._validate_depth_options()
        if self.shuffle not in SHUFFLE_POLICIES:
            raise ValueError(f"shuffle={self.shuffle!r}: choose one of {SHUFFLE_POLICIES}")
        if self.global_pool not in ("avg", ""):
            raise ValueError(f"global_pool={self.global_pool!r}: SReT supports 'avg' or '' (no pooling)")
        if self.in_chans < 1 or self.num_classes < 0:
            raise ValueError(f"in_chans must be >= 1 and num_classes >= 0, got {self.in_chans} and {self.num_classes}")
        if min(self.img_size) < 1:
            raise ValueError(f"img_size={self.img_size} must be positive")
        self.check_input_size(self.img_size)

    def _validate_depth_options(self) -> None:
        """extra_applications, recall and state_norm (see the class docstring)."""
        checks.choice("extra_applications", self.extra_applications, EXTRA_APPLICATIONS)
        for name in ("recall", "state_norm"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} must be True or False")
        if self.state_norm and not self.recall:
            raise ValueError(
                "state_norm=True needs recall=True: state_norm normalises the state before the input is "
                "injected (x <- LN(x) + x0). Set recall=True too, or leave state_norm=False."
            )
