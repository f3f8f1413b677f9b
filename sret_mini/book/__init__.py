"""What the chapters of the book share, written once and imported (as d2l's chapters import `d2l`).

A chapter's set-up cell calls :func:`setup`, which reads the profile, seeds every random-number
generator and picks the device; later cells size their experiments with ``env.pick``::

    from sret_mini import book
    env = book.setup()                                       # prints a one-line summary
    steps = env.pick(smoke=2, book=200, colab=5000)          # the value for the current profile

The modules, one idea each:

* :mod:`~sret_mini.book.profiles`: ``smoke``, ``book``, ``colab``, ``full``; :func:`setup`, :func:`pick`;
* :mod:`~sret_mini.book.expect`: :func:`expect`, the check that guards a sentence stating a result;
* :mod:`~sret_mini.book.compare`: :func:`over_seeds` (every arm on every seed), paired-seed
  comparisons with their verdict, and their plot;
* :mod:`~sret_mini.book.timing`: :func:`time_call` (``torch.utils.benchmark``), :func:`cpu_threads`;
* :mod:`~sret_mini.book.runs`: :func:`load_or_train`, runs kept under the data folder, and
  :func:`offline_teacher`, the teacher of the offline data;
* :mod:`~sret_mini.book.curves`: a run's training curves (:func:`plot_history`);
* :mod:`~sret_mini.book.quoted`: figures of the paper and other projects, with their sources;
* :mod:`~sret_mini.book.results`: the benchmark results shipped with the package;
* :mod:`~sret_mini.book.display`: Markdown, tables, the package's source.
"""

from .compare import Paired, arms_table, over_seeds, paired, plot_arms
from .curves import plot_history, read_metrics
from .display import Markdown, markdown_table, source
from .expect import ClaimFailed, ClaimWarning, expect
from .profiles import (
    ENV_PROFILE,
    ENV_SIZES,
    PROFILE_HELP,
    PROFILES,
    BookEnv,
    current_profile,
    in_colab,
    pick,
    setup,
    sizes_profile,
)
from .quoted import Quoted, quoted, quoted_figures, quoted_table
from .results import available_results, read_result
from .runs import load_or_train, offline_teacher, run_folder
from .timing import Timing, cpu_threads, time_call

__all__ = [
    "PROFILES", "PROFILE_HELP", "ENV_PROFILE", "ENV_SIZES", "BookEnv", "current_profile", "pick", "setup", "in_colab",
    "sizes_profile",
    "expect", "ClaimFailed", "ClaimWarning",
    "Paired", "paired", "arms_table", "over_seeds", "plot_arms",
    "Timing", "time_call", "cpu_threads",
    "load_or_train", "offline_teacher", "run_folder", "plot_history", "read_metrics",
    "Quoted", "quoted", "quoted_figures", "quoted_table",
    "available_results", "read_result",
    "Markdown", "markdown_table", "source",
]  # fmt: skip
