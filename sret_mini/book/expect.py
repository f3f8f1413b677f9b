"""Checks that guard the sentences of a chapter which state an experimental result.

A chapter's prose says what its experiment shows ("SReT beats naive recursion in every seed"), and
the cell above it checks exactly that with :func:`expect`. The check prints a tick when the result
holds. When it does not, what happens depends on the profile:

* ``book`` (the rendered book, CI): :class:`ClaimFailed` is raised, so the build fails the day
  the experiment stops supporting its sentence;
* ``colab`` and ``full``: a visible warning, and the chapter goes on (the reader's run is theirs);
* ``smoke`` (the tests, tiny sizes), or any profile run at smoke sizes (``SRET_SIZES=smoke``): a
  line that reports it; nothing is enforced.
"""

from __future__ import annotations

import warnings

from .profiles import current_profile, sizes_profile


class ClaimFailed(AssertionError):
    """A sentence of the chapter is no longer supported by the experiment that precedes it."""


class ClaimWarning(UserWarning):
    """The reader's run does not support a sentence of the chapter (``colab``/``full`` profiles)."""


def expect(holds, claim: str, detail: str = "", profile: str | None = None) -> bool:
    """Check a result the chapter's prose states; returns whether it holds.

    Args:
        holds: the result, as a truth value (``bool(holds)`` is used: a NumPy bool or a 0-d tensor work).
        claim: the result in words, as the prose states it.
        detail: the measured numbers, shown when the check fails.
        profile: overrides the current profile (see :mod:`sret_mini.book.profiles`).

    Raises:
        ClaimFailed: the result does not hold and the profile is ``book``.

    Example:
        >>> expect(3 > 2, "three is more than two", profile="book")
        ✓ three is more than two
        True
    """
    ok = bool(holds)
    if ok:
        print(f"✓ {claim}")
        return True
    name = "smoke" if sizes_profile() == "smoke" else current_profile() if profile is None else profile
    message = f"the text below says: {claim!r}, but this run does not show it" + (f" ({detail})" if detail else "")
    if name == "book":
        raise ClaimFailed(message + ". Rerun the chapter; if it persists, the experiment or the text must change.")
    if name == "smoke":
        print(f"✗ (smoke profile: reported, not enforced) {claim}" + (f" ({detail})" if detail else ""))
    else:
        print(f"⚠ {message}")
        warnings.warn(message, ClaimWarning, stacklevel=2)
    return False
