"""The ``parity`` command: a typer app assembled from the command modules.

::

    parity init NAME [--dir PATH]      a working feature repo with sample data
    parity plan | apply                what would change / register it
    parity list | describe | history   what is registered, and how it changed (NAME@1.2.0)
    parity search QUERY [--tag K=V]    find views, features, services by name, text, tags, owner
    parity unused [--days 90]          features nothing selects or read lately (to deprecate)
    parity diff NAME 1.0.0 2.0.0       the fields (and code) changed between two versions
    parity rollback NAME --to 1.2.0    an old version applied again, as a new version
    parity lifecycle NAME STATE        draft, active, deprecated (warned) or retired (refused)
    parity get REFS --entity K=V ...   online values with status and age (or --json)
    parity historical ...              training data to Parquet or CSV (or a table: --out -)
    parity push SOURCE FILE            rows of a CSV, Parquet or JSON file to a push source
    parity materialize START END       latest values into the online store
    parity materialize-incremental END from where the last run ended
    parity materialize-reset VIEW...   forget views' recorded windows (start afresh)
    parity teardown                    clear the project's online data
    parity serve [--port N]            the HTTP feature server
    parity stream run | status         the stream consumers, and what they have done
    parity profile VIEW                statistics of a view's features (--history, --online)
    parity check VIEW                  its quality checks, each violation with what was seen
    parity drift VIEW --baseline ...   KS, PSI, chi-squared, JS per feature
    parity freshness                   every view's lag, score and SLA compliance
    parity skew [--since]              what was served against the point-in-time join
    parity monitor run | report        alerts on a schedule; an HTML report
    parity erase --entity E --keys K   a data subject's rows removed everywhere (a receipt)
    parity export --entity E --keys K  everything held about them, to JSON or Parquet
    parity retention run               rows older than their retention deleted
    parity import-feast PATH [--out D] a Feast repo as a Parity repo
    parity token create | list | revoke   API tokens (auth)
    parity restrict --entity E --keys  restrict processing of keys (--lift); parity restrictions
    parity keys rotate | status        re-encrypt with the active key; what each key sealed
    parity audit [--since ...] | verify   who did what (the audit log); check its hash chain
    parity registry export | import    every definition and its history, to JSON and back
    parity snapshot create | list | show | verify | recreate   reproducible training snapshots
    parity version
"""

from __future__ import annotations

import contextlib
import platform
import sys
from pathlib import Path

import typer

from parity import __version__
from parity.cli import (
    adopt,
    audit,
    browse,
    discovery,
    drift,
    erase,
    freshness,
    get,
    historical,
    keys,
    lineage,
    monitor,
    online,
    profile,
    push,
    quality,
    registry_cmd,
    render,
    repo,
    restrict,
    serve,
    skew,
    snapshot,
    stream,
    token,
)
from parity.cli.common import CONFIG_FILE, RepoOption, VerboseOption, handles_errors

app = typer.Typer(
    name="parity",
    help="Parity: one feature definition, the same value in training and in production.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    # Help and usage errors in click's plain format: typer's rich help imports a markdown
    # parser and half of rich, which would double what `parity --help` costs (the commands'
    # own output is still rich).
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

app.command("init")(repo.init)
app.command("plan")(repo.plan)
app.command("apply")(repo.apply)
app.command("list")(browse.list_)
app.command("describe")(browse.describe)
app.command("history")(browse.history)
app.command("lineage")(lineage.lineage)
app.command("search")(discovery.search)
app.command("unused")(discovery.unused)
app.command("diff")(browse.diff)
app.command("rollback")(repo.rollback)
app.command("lifecycle")(repo.lifecycle)
app.command("get")(get.get)
app.command("historical")(historical.historical)
app.command("push")(push.push)
app.command("materialize")(online.materialize)
app.command("materialize-incremental")(online.materialize_incremental)
app.command("materialize-reset")(online.materialize_reset)
app.command("teardown")(online.teardown)
app.command("serve")(serve.serve)
app.command("import-feast")(adopt.import_feast)
app.add_typer(stream.app, name="stream")
app.command("profile")(profile.profile)
app.command("check")(quality.check)
app.command("drift")(drift.drift)
app.command("freshness")(freshness.freshness)
app.command("skew")(skew.skew)
app.add_typer(monitor.app, name="monitor")
app.add_typer(token.app, name="token")
app.command("restrict")(restrict.restrict)
app.command("restrictions")(restrict.restrictions)
app.command("erase")(erase.erase)
app.command("export")(erase.export)
app.add_typer(erase.app, name="retention")
app.add_typer(keys.app, name="keys")
app.add_typer(audit.app, name="audit")
app.add_typer(registry_cmd.app, name="registry")
app.add_typer(snapshot.app, name="snapshot")


@app.command("version")
@handles_errors
def version(repo: RepoOption = Path("."), verbose: VerboseOption = False) -> None:
    """Show Parity's version, and the repo's project and registry when there is a repo."""
    from rich.text import Text

    out = render.console()
    out.print(Text(f"parity {__version__} (Python {platform.python_version()})"))
    if (repo / CONFIG_FILE).is_file():
        from parity.config import RepoConfig

        config = RepoConfig.load(repo)
        out.print(Text(f"project {config.project}, registry {config.registry.location()}"))


LONG_RUNNING = frozenset({"serve", "stream", "monitor"})
"""Commands that may run for days: their processes collect garbage as usual."""


def main() -> None:
    """The console-script entry point. Parity's own warnings (a deprecated view read) are
    printed as ``warning: ...`` lines on stderr, not with a Python source location."""
    import warnings

    shown = warnings.formatwarning

    def plain(message, category, filename, lineno, line=None):  # type: ignore[no-untyped-def]
        if category.__module__.startswith("parity"):
            return f"warning: {message}\n"
        return shown(message, category, filename, lineno, line)

    warnings.formatwarning = plain
    if not set(sys.argv[1:2]) & LONG_RUNNING:
        from parity import cache

        cache.freeze_after_bulk_loads()  # a command that ends soon (parity.cache)
    try:
        app()
    except SystemExit as stop:
        _leave(stop.code)
        raise
    _leave(0)


def _leave(code: object) -> None:
    """End the process at once when the command is done, skipping only the interpreter's
    freeing of every object one by one: after a plan of thousands of definitions that
    takes a fifth of a second. Exit handlers run, logs and output are flushed first.
    Returns (the interpreter then exits as usual) while another non-daemon thread runs."""
    import atexit
    import logging
    import os
    import threading

    main = threading.main_thread()
    if any(t is not main and t.is_alive() and not t.daemon for t in threading.enumerate()):
        return
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    logging.shutdown()
    for out in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            out.flush()
    os._exit(status)
