"""Paired-seed comparisons: two ways of training, measured on the same seeds, and a verdict.

With few seeds, the honest question is not "which mean is higher" but "does one arm win on every
seed, by more than the seeds themselves move the result?". :class:`Paired` answers exactly that:
the arms share their seeds (same initialisation draw, same data order), the difference is taken
seed by seed, and the effect counts as shown only when every paired difference has the same sign
*and* the mean difference exceeds the spread (standard deviation across seeds) of either arm.
:func:`over_seeds` runs every arm on every seed, in the order a chapter chooses.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .display import Markdown, markdown_table


def _sd(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


@dataclass(frozen=True)
class Paired:
    """Arm `b` against arm `a` on the same seeds (higher is better unless `higher_is_better=False`)."""

    a: str
    b: str
    seeds: tuple
    a_values: tuple
    b_values: tuple
    higher_is_better: bool = True

    def __post_init__(self):
        if not (len(self.seeds) == len(self.a_values) == len(self.b_values) >= 2):
            raise ValueError(
                f"a paired comparison needs one value per seed in both arms, and at least 2 seeds; "
                f"got {len(self.seeds)} seeds, {len(self.a_values)} and {len(self.b_values)} values"
            )

    @property
    def gains(self) -> list[float]:
        """How much `b` improves on `a`, seed by seed (positive: `b` is better)."""
        sign = 1 if self.higher_is_better else -1
        return [sign * (y - x) for x, y in zip(self.a_values, self.b_values)]

    @property
    def mean_gain(self) -> float:
        return statistics.fmean(self.gains)

    @property
    def spread(self) -> float:
        """The larger standard deviation across seeds of the two arms."""
        return max(_sd(self.a_values), _sd(self.b_values))

    @property
    def wins(self) -> int:
        """Seeds on which `b` is better than `a`."""
        return sum(g > 0 for g in self.gains)

    def beyond_spread(self) -> bool:
        """`b` better on every seed, by a mean gain larger than either arm's seed spread."""
        return self.wins == len(self.seeds) and self.mean_gain > self.spread

    def verdict(self) -> str:
        """One line: wins, mean gain, spread, and whether the effect is beyond the spread."""
        n, shown = len(self.seeds), "beyond" if self.beyond_spread() else "not beyond"
        return (f"{self.b} vs {self.a}: better on {self.wins}/{n} seeds, mean gain {self.mean_gain:+.2f} "
                f"(seed spread {self.spread:.2f}): {shown} the spread")  # fmt: skip

    def _repr_markdown_(self) -> str:
        return self.verdict()

    def __repr__(self) -> str:
        return self.verdict()


def over_seeds(run: Callable, seeds: Sequence[int], arms: Iterable[str] | None = None, *,
               seed_major: bool = False) -> dict[str, list]:  # fmt: skip
    """Every arm's result on every seed: ``{arm: [result on seeds[0], result on seeds[1], ...]}``.

    With ``arms``, ``run(arm, seed)`` trains one arm on one seed and returns what the chapter keeps
    (a number, or a richer result: a history, a model, a log). The runs go arm after arm, each arm on
    every seed, or, with ``seed_major=True``, seed after seed, every arm on one seed (so that a slow
    spell of the machine hits every arm). Without ``arms``, ``run(seed)`` returns ``{arm: result}``
    for all arms at once: several readings of one training run, such as a model and its averages.

    The values that :func:`arms_table`, :func:`paired` and :func:`plot_arms` read are then the result
    itself, or one comprehension away: ``{arm: [r.top1 for r in rs] for arm, rs in results.items()}``.

    Example:
        >>> over_seeds(lambda arm, seed: f"{arm}{seed}", [0, 1], ["a", "b"])
        {'a': ['a0', 'a1'], 'b': ['b0', 'b1']}
        >>> over_seeds(lambda seed: {"model": seed, "average": 10 * seed}, [1, 2])
        {'model': [1, 2], 'average': [10, 20]}
    """
    if arms is None:
        readings = [run(seed) for seed in seeds]
        return {arm: [r[arm] for r in readings] for arm in readings[0]} if readings else {}
    results = {arm: [] for arm in arms}
    if seed_major:
        order = [(arm, seed) for seed in seeds for arm in results]
    else:
        order = [(arm, seed) for arm in results for seed in seeds]
    for arm, seed in order:
        results[arm].append(run(arm, seed))
    return results


def arms_table(results: dict[str, Sequence[float]], seeds: Sequence[int], digits: int = 2) -> Markdown:
    """A table with one row per arm: its value on every seed, then mean ± standard deviation."""
    rows = []
    for name, values in results.items():
        if len(values) != len(seeds):
            raise ValueError(f"arm {name!r} has {len(values)} values for {len(seeds)} seeds")
        cells = [f"{v:.{digits}f}" for v in values]
        rows.append([name, *cells, f"{statistics.fmean(values):.{digits}f} ± {_sd(values):.{digits}f}"])
    return markdown_table(rows, ["arm", *[f"seed {s}" for s in seeds], "mean ± sd"])


def paired(results: dict[str, Sequence[float]], a: str, b: str, seeds: Sequence[int],
           higher_is_better: bool = True) -> Paired:  # fmt: skip
    """The comparison of arm `b` against arm `a`, both taken from `results` (arm -> one value per seed)."""
    for name in (a, b):
        if name not in results:
            raise KeyError(f"no arm {name!r} in the results; arms are {sorted(results)}")
    return Paired(a, b, tuple(seeds), tuple(results[a]), tuple(results[b]), higher_is_better)


def plot_arms(results: dict[str, Sequence[float]], seeds: Sequence[int], ylabel: str, ax=None):
    """Each arm's value per seed, the seeds joined across arms (a paired plot). Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(1.4 + 1.1 * len(results), 3.2))
    names = list(results)
    for i, seed in enumerate(seeds):
        ax.plot(range(len(names)), [results[n][i] for n in names], "o-", alpha=0.7, label=f"seed {seed}")
    means = [statistics.fmean(results[n]) for n in names]
    ax.plot(range(len(names)), means, "k_", markersize=28, mew=2, label="mean")
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
    ax.set(ylabel=ylabel)
    ax.legend(fontsize=8)
    return ax
