"""What a run prints, and where everything else goes.

By default a run is quiet: while :func:`routed_output` holds, the process's stdout and stderr (file
descriptors 1 and 2, and ``sys.stdout`` / ``sys.stderr``) write to a log file, ``OUT/logs/raycurate.log``:
Ray's INFO and WARNING lines, its C++ core worker's lines, the workers' output Ray forwards to the driver,
Python warnings, the libraries' chatter. raycurate's own lines (``[raycurate] ...``, the progress, the
summary) go to :func:`console`, the terminal (or the log the process was started with). ``verbose``: nothing
is rerouted and Ray Data shows its own progress bars and execution lines too (:func:`verbose`).
"""
from __future__ import annotations

import io
import os
import sys
from contextlib import contextmanager
from typing import Iterator, TextIO

_console: TextIO | None = None
_verbose = False


def console() -> TextIO:
    """Where raycurate's own lines go: the terminal while output is routed, else ``sys.stderr``."""
    return _console if _console is not None else sys.stderr


def verbose() -> bool:
    """Whether the run shows everything (``raycurate run --verbose``)."""
    return _verbose


def say(message: str) -> None:
    """One of raycurate's lines, on the console."""
    out = console()
    out.write(message + "\n")
    out.flush()


def _fd(stream: TextIO) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None


@contextmanager
def routed_output(log_path: str, verbose: bool = False) -> Iterator[TextIO]:
    """While it holds, everything written to stdout and stderr goes to ``log_path`` (appended), and
    :func:`console` is the stream stderr was; ``verbose``: nothing moves. Yields the console."""
    global _console, _verbose
    previous = (_console, _verbose)
    _verbose = verbose
    if verbose:
        try:
            yield console()
        finally:
            _console, _verbose = previous
        return
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    old_out, old_err = sys.stdout, sys.stderr
    # said once, on stdout: information, not an error (stderr keeps one line per error the user must act on)
    old_out.write(f"[raycurate] Ray's and the libraries' lines go to {log_path} (--verbose shows them here)\n")
    for s in (old_out, old_err):
        s.flush()
    log = open(log_path, "a", buffering=1, encoding="utf-8", errors="replace")
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    # the console: a stream of its own on the terminal stderr was, or (stderr is not a file descriptor's:
    # a test's capture) that stream itself
    term = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace") \
        if _fd(old_err) == 2 else None
    _console = term if term is not None else old_err
    for fd in (1, 2):   # what C and C++ code writes (Ray's core worker) and the child processes inherit
        os.dup2(log.fileno(), fd)
    sys.stdout = sys.stderr = log   # Ray's log handlers write to sys.stderr at emit time; warnings too
    try:
        yield _console
    finally:
        for s in (log, _console):
            s.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        sys.stdout, sys.stderr = old_out, old_err
        if term is not None:
            term.close()
        log.close()
        _console, _verbose = previous


__all__ = ["console", "routed_output", "say", "verbose"]
