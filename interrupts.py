"""Stopping cleanly: SIGINT, SIGTERM and SIGHUP end a run between iterations, never mid-write."""

from __future__ import annotations

import signal
import threading

# SIGHUP: a closed terminal or SSH session (Windows has none).
SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


class Interrupted(BaseException):
    """A signal ended the run; status is the exit status (128 + the signal number)."""

    def __init__(self, signum: int, message: str):
        super().__init__(f"{message} ({signal.Signals(signum).name})")
        self.status = 128 + signum


class Interrupts:
    """Catch SIGINT, SIGTERM and SIGHUP (a closed terminal or SSH session; not on Windows)
    while in this context, restoring the old handlers on exit.

    Before the optimisation runs (loading), and between a batch's jobs, a signal ends the run
    at once, as nothing is being written then. Once it runs (`running`), a signal only sets a
    flag that stylize's stop() reads, so the loop ends between iterations and never cuts a
    file write short. A signal the process was told to ignore (a shell's `command &` ignores
    SIGINT) stays ignored.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._running = self._ran = False
        self._previous: dict[int, object] = {}

    @property
    def running(self) -> bool:
        """Whether the optimisation runs now (a signal then only sets the flag)."""
        return self._running

    @running.setter
    def running(self, value: bool) -> None:
        """Set whether the optimisation runs now; that it ran once is kept (a signal after it
        comes between runs)."""
        self._running, self._ran = value, self._ran or value

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is not threading.main_thread():  # Python forbids it
            return self
        for signum in SIGNALS:
            if signal.getsignal(signum) is not signal.SIG_IGN:  # e.g. a shell's `command &`
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: object) -> None:
        self.signum = signum
        if self._ran and not self.running:  # between a batch's jobs, or after the last one
            raise Interrupted(signum, "between runs; what was finished is kept")
        if not self.running:
            raise Interrupted(signum, "before the optimisation started; nothing written")

    def stop(self) -> bool:
        """Whether a signal asked the run to stop (stylize's stop callback)."""
        return self.signum is not None
