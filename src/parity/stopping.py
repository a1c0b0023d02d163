"""SIGTERM and SIGINT as a polite stop for long-running loops (stream consumers, monitor)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["stop_on_signals"]


def stop_on_signals(stop: threading.Event, log: logging.Logger, what: str) -> Callable[[], None]:
    """Until the returned function is called, SIGTERM and SIGINT set ``stop`` (and log
    ``"<SIGNAL>: <what>"``) instead of killing the process. Outside the main thread, where
    Python cannot install handlers, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum: int, _frame: Any) -> None:
        log.info("%s: %s", signal.Signals(signum).name, what)
        stop.set()

    for s in old:
        signal.signal(s, handler)

    def restore() -> None:
        for s, h in old.items():
            signal.signal(s, h)

    return restore
