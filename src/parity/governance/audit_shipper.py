"""The audit spool's shipper process: moves a feature server's sealed spool files into the
chain from a process of its own, so the server's process spends no time (and no GIL) on
hashing, JSON and the database.

``Spool(..., shipper="process")`` (what the feature server asks for) starts one child per
spool (``audit_spool.Shipper``), ``python -m parity.governance.audit_shipper``, and tells it over its stdin (a pipe)
the registry to ship to (one JSON line: URL, schema, project, timeout; never on the
command line) and then, one newline per sealed file, that there is work. The spool seals
its current file every ``interval_s`` (or at ``ship_records`` records) and *lets go of its
lock*: a sealed file nobody holds is shipped as an orphan is (``audit_spool.ship_folder``:
flock, ``P`` markers, exactly once), so the child, the server's own process or any later
process may ship it, never two at once and never twice.

Lifecycle:

- started by ``Spool`` (the server's startup); a child that cannot be started leaves the
  spool shipping from its thread (a warning);
- the child ships only its parent's files (the pid in their names), on each nudge and every
  ``interval_s`` while the registry refuses them (a warning at most every 30 s);
- it ends when its stdin reaches end of file, i.e. when the spool closes the pipe (shutdown)
  or when the parent dies, however it dies (the kernel closes the pipe), and also when its
  parent process changes (``os.getppid()``, checked at least every second: a pipe a fork of
  the parent still holds open does not keep it alive). It ignores SIGINT (a terminal's
  Ctrl-C goes to the whole process group; the parent decides);
- ``Spool.close`` closes the pipe, waits for the child to end (bounded; killed otherwise)
  and then ships what is left itself: the last ship happens in the server's process, so
  the records are in the chain when ``close`` returns;
- a child that died is restarted by the spool's thread (at most ``RESTARTS`` times a
  minute); past that the spool ships from its thread, as without a child.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["main"]

log = logging.getLogger("parity.audit")

PARENT_CHECK_S = 1.0
NICE = 5
"""How much lower the child's CPU priority is than its parent's."""
WARN_EVERY_S = 30.0


# -- the child -------------------------------------------------------------------------------
def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):  # background work: requests come first on a busy CPU
        os.nice(NICE)
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s parity audit shipper: %(message)s"
    )
    stdin = sys.stdin.buffer.fileno()
    line = _read_line(stdin)
    if not line:
        return 0
    config: dict[str, Any] = json.loads(line)
    parent = int(config["parent"])
    if os.getppid() != parent:
        return 0

    from parity.governance.audit_spool import ship_folder
    from parity.governance.audit_store import AuditStore
    from parity.registry.registry import Registry

    registry = Registry(
        config["url"], config["project"], schema=config["schema"], timeout=config["timeout"]
    )
    rows = AuditStore(registry)
    rows.per_row = True  # no other thread here to hand the GIL to
    folder = Path(config["folder"])
    header = config["header"]
    interval_s = float(config["interval_s"])
    failing: BaseException | None = None
    warned = 0.0
    due = True
    try:
        while True:
            wait = min(interval_s, PARENT_CHECK_S) if failing is not None else PARENT_CHECK_S
            if not due:
                ready, _, _ = select.select([stdin], [], [], wait)
                if ready:
                    if not os.read(stdin, 65536):
                        return 0  # the spool closed the pipe, or the parent died
                    due = True
            if os.getppid() != parent:
                return 0
            if not due and failing is None:
                continue
            due = False
            try:
                ship_folder(folder, rows, header, pid=parent)
            except Exception as exc:
                now = time.monotonic()
                if failing is None or now - warned >= WARN_EVERY_S:
                    warned = now
                    log.warning(
                        "the audit log cannot take records now (%s); they stay in the spool "
                        "%s and are retried",
                        exc,
                        folder,
                    )
                failing = exc
            else:
                if failing is not None:
                    log.warning("the audit log takes records again; the spool is shipped")
                failing = None
    finally:
        rows.release()
        registry._engine.dispose()


def _read_line(fd: int) -> bytes:
    out = b""
    while not out.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            return b""
        out += chunk
    return out


if __name__ == "__main__":
    sys.exit(main())
