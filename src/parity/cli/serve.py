"""``parity serve``: the HTTP feature server for a repo (see ``parity.server``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from parity.cli.common import RepoOption, VerboseOption, handles_errors

SERVER_MODULES = ("uvicorn", "httptools", "orjson", "prometheus_client")
"""What ``parity serve`` needs: ``pip install 'parity-feature-store[server]'``."""


@handles_errors
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="Port to bind.")] = 6566,
    workers: Annotated[
        int, typer.Option("--workers", "-w", min=1, help="Worker processes (each its own store).")
    ] = 1,
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", min=1, help="Larger request bodies get 413.")
    ] = 4 * 1024 * 1024,
    max_entity_rows: Annotated[
        int,
        typer.Option(
            "--max-entity-rows",
            min=1,
            help="More entity rows in one read (or rows in one push) get 413.",
        ),
    ] = 100_000,
    large_read_rows: Annotated[
        int,
        typer.Option(
            "--large-read-rows",
            min=1,
            help="Reads of this many rows or more run off the event loop.",
        ),
    ] = 1_000,
    cache_ttl: Annotated[
        float | None,
        typer.Option(
            "--cache-ttl",
            min=0,
            help="Online record cache TTL in seconds; overrides parity.yaml's cache (0 = off).",
        ),
    ] = None,
    cache_max_entries: Annotated[
        int, typer.Option("--cache-max-entries", min=1, help="Records the cache keeps at most.")
    ] = 100_000,
    graceful_timeout: Annotated[
        float,
        typer.Option(
            "--graceful-timeout", min=0, help="Seconds in-flight requests get on SIGTERM."
        ),
    ] = 30.0,
    log_level: Annotated[str, typer.Option("--log-level", help="debug, info, warning...")] = "info",
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every request.")] = False,
    errors: Annotated[
        str | None,
        typer.Option(
            "--errors",
            help="Error bodies: parity (its error object) or feast (the incumbent SDK's "
            "shape); default: parity.yaml's server.errors, else parity. A request's "
            "X-Parity-Errors header overrides it.",
        ),
    ] = None,
    repo: RepoOption = Path("."),
    verbose: VerboseOption = False,
) -> None:
    """Serve online features, push and the registry over HTTP until SIGTERM or Ctrl-C."""
    from parity.plugins import require

    require(SERVER_MODULES, "server", "parity serve")
    from parity.server.feast_errors import ERROR_SHAPES

    if errors is not None and errors not in ERROR_SHAPES:
        raise typer.BadParameter(
            f"{errors!r}: give one of {', '.join(ERROR_SHAPES)}", param_hint="--errors"
        )
    from parity.server.run import ServerSettings
    from parity.server.run import serve as run

    cache_max = cache_max_entries
    run(
        ServerSettings(
            repo=str(repo),
            host=host,
            port=port,
            workers=workers,
            max_body_bytes=max_body_bytes,
            max_entity_rows=max_entity_rows,
            large_read_rows=large_read_rows,
            cache_ttl_seconds=cache_ttl,
            cache_max_entries=cache_max,
            graceful_timeout=graceful_timeout,
            log_level=log_level,
            access_log=access_log,
            errors=errors,
        )
    )
