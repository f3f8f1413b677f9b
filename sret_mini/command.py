"""How every `sret-mini` command ends: its result, or one line that names the problem, and exit 2.

Bad input (a missing file, an unknown dataset, an option out of range, a diverging run) raises
ValueError, FileNotFoundError, FileExistsError or RuntimeError with a message that says what to
do; a traceback would only hide it. `--debug` anywhere on the command line shows the traceback.
Ctrl-C pressed twice (the first asks training to stop after its step) exits with status 130.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

#: the errors whose message is the whole story for the user
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, RuntimeError)
#: the exit status of a command refused for its input (argparse's convention)
USAGE_ERROR = 2
#: the exit status of a command stopped by Ctrl-C (128 + SIGINT)
INTERRUPTED = 130


def run(prog: str, fn: Callable[[list[str]], object], argv: list[str]) -> object:
    """`fn(argv)`, with the user's errors printed as `prog: error: message` and exit status 2."""
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    try:
        return fn(argv)
    except USER_ERRORS as error:
        if debug:
            raise
        print(f"{prog}: error: {error} (--debug shows the traceback)", file=sys.stderr)
        sys.exit(USAGE_ERROR)
    except KeyboardInterrupt:  # a second Ctrl-C: stop at once, with the shell's status for an interrupt
        if debug:
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(INTERRUPTED)
