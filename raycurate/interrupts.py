"""Ctrl-C and SIGTERM during a run: the workers stopped, one line, exit 130 or 143 (:func:`interruptible`).

The rules, each an invariant:

* **SIGINT** (Ctrl-C) raises :class:`KeyboardInterrupt` in the main thread, so every library (Ray Data's
  executor, the lock's release) unwinds as it does for Ctrl-C. Leaving the block so (or by any exception after
  the signal: a library may wrap the interrupt), ``stop`` runs (the CLI's: ``ray.shutdown()``, which stops the
  local Ray this driver started and its workers) and :class:`Interrupted` is raised instead, with the exit
  status 130. Ray's own processes block SIGINT, so a terminal's Ctrl-C to the whole process group leaves
  them to this shutdown.
* **SIGTERM** leaves at once: the interrupted line (:data:`MESSAGE`), ``hurry()`` (the CLI's: the locks
  released, the local Ray's processes sent SIGTERM), ``os._exit(143)``. Unwinding is no option here: a SIGTERM
  to the process group (systemd, the web UI's Cancel, ``kill -- -PGID``) ends Ray's processes too, and Ray's
  core worker then ends the driver with status 1 the moment it finds its object store gone.
  ``ray.init`` replaces the driver's SIGTERM handler with ``sys.exit``:
  :func:`raycurate.engine.cluster.init_ray` puts the one before it back.
* **A second signal** during the cleanup does the same as SIGTERM, with the first signal's status: no
  traceback, one line. The handlers stay after an interruption: the process is on its way out.
* The line is written once (:func:`say_interrupted`), on the console: the terminal, even while the output is
  routed to the log.
"""
from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from .console import console

MESSAGE = "raycurate: interrupted: run the same command to resume"
SIGNALS = (signal.SIGINT, signal.SIGTERM)
_said = False


class Interrupted(BaseException):
    """The run was interrupted by ``signum`` and cleaned up; ``exit_code`` is 128 + ``signum``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


def say_interrupted() -> None:
    """The interrupted line, once, on the console."""
    global _said
    if not _said:
        _said = True
        out = console()
        out.write(MESSAGE + "\n")
        out.flush()


def _leave(signum: int, hurry: Callable[[], None]) -> None:
    """The line, ``hurry()``, and out with 128 + ``signum``, whatever happens on the way (the line first: Ray's
    core worker may end this process as soon as Ray's processes are gone)."""
    try:
        say_interrupted()
        hurry()
    finally:
        os._exit(128 + signum)


@contextmanager
def interruptible(stop: Callable[[], None] = lambda: None,
                  hurry: Callable[[], None] = lambda: None) -> Iterator[None]:
    """SIGINT interrupts the block (then ``stop()``, :class:`Interrupted`); SIGTERM or a second signal leaves
    the process at once after ``hurry()``. Outside the main thread it does nothing (Python's signal handlers
    run there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        if received or signum == signal.SIGTERM:
            _leave((received or [signum])[0], hurry)
        received.append(signum)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, on_signal) for sig in SIGNALS}
    interrupted = False
    try:
        yield
    except BaseException as exc:
        if not received and not isinstance(exc, KeyboardInterrupt):
            raise
        interrupted = True
        received[:] = received or [signal.SIGINT]   # from now on a signal leaves at once
        stop()
        raise Interrupted(received[0]) from None
    finally:
        if not interrupted:   # left normally, or by another exception: the handlers as they were
            for sig, handler in previous.items():
                if handler is not None:
                    signal.signal(sig, handler)


__all__ = ["MESSAGE", "Interrupted", "interruptible", "say_interrupted"]
