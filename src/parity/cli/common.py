"""What every command shares: the ``--repo`` and ``--verbose`` options, error handling, kinds.

A ``ParityError`` ends a command with ``error: <message>`` on stderr and exit status 1, with
the traceback only under ``--verbose``; usage errors are typer's (status 2). Any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from parity.cli import render
from parity.errors import ConfigError, ParityError, RegistryError

if TYPE_CHECKING:
    from parity.store import FeatureStore

CONFIG_FILE = "parity.yaml"
"""``parity.config.CONFIG_FILE``, named here so ``parity --help`` loads no config code."""

F = TypeVar("F", bound=Callable[..., Any])

RepoOption = Annotated[
    Path,
    typer.Option(
        "--repo",
        "-r",
        help=f"The feature repo folder (holding {CONFIG_FILE}).",
        show_default="current folder",
        file_okay=False,
    ),
]
VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show the full traceback of an error.")
]

KIND_ALIASES = {
    "entity": "entity",
    "entities": "entity",
    "source": "source",
    "sources": "source",
    "data_source": "source",
    "data_sources": "source",
    "view": "feature_view",
    "views": "feature_view",
    "feature_view": "feature_view",
    "feature_views": "feature_view",
    "on_demand_view": "on_demand_feature_view",
    "on_demand_views": "on_demand_feature_view",
    "on_demand_feature_view": "on_demand_feature_view",
    "on_demand_feature_views": "on_demand_feature_view",
    "odfv": "on_demand_feature_view",
    "odfvs": "on_demand_feature_view",
    "service": "feature_service",
    "services": "feature_service",
    "feature_service": "feature_service",
    "feature_services": "feature_service",
    "model": "model",
    "models": "model",
    "role": "role",
    "roles": "role",
}


def parse_kind(value: str | None, option: str = "--kind") -> str | None:
    """The registry kind for what a person typed (``view``, ``feature-views``...)."""
    if value is None:
        return None
    kind = KIND_ALIASES.get(value.strip().lower().replace("-", "_"))
    if kind is None:
        raise typer.BadParameter(
            f"unknown kind {value!r}; use entity, source, view, on-demand-view, service or role",
            param_hint=option,
        )
    return kind


def split_refs(items: list[str] | None) -> list[str]:
    """Feature references given repeated or comma-separated; a part without a view takes
    the previous part's (``view:a,b`` is ``view:a`` and ``view:b``)."""
    refs: list[str] = []
    view = None
    for item in items or []:
        for part in (p.strip() for p in item.split(",")):
            if not part:
                continue
            if ":" in part:
                view = part.split(":", 1)[0]
            elif view is not None:
                part = f"{view}:{part}"
            refs.append(part)
    return refs


def handles_errors(fn: F) -> F:
    """Turn a ``ParityError`` raised by the command into ``error: ...`` and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ParityError as exc:
            if kwargs.get("verbose"):
                render.console(stderr=True).print_exception(show_locals=False)
            render.error(str(exc))
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


@contextmanager
def open_store(repo: Path) -> Iterator[FeatureStore]:
    """The repo's FeatureStore, closed afterwards; a clear error when there is no repo."""
    if not repo.exists():
        raise ConfigError(f"feature repo folder {str(repo)!r} does not exist")
    from parity.store import FeatureStore

    store = FeatureStore(repo)
    try:
        yield store
    finally:
        store.close()


def require_registry(store: FeatureStore) -> None:
    """Refuse a command that reads definitions when the repo's registry does not exist.

    Opening the registry creates nothing (only a write does), so a mistyped path leaves no
    empty registry behind; this says so instead of answering as if nothing were registered.
    """
    registry = store.registry
    if not registry.exists():
        raise RegistryError(
            f"the registry at {registry.location} does not exist (project "
            f"{store.project!r}): nothing is registered yet; `parity apply` creates it"
        )


@contextmanager
def working(message: str) -> Iterator[None]:
    """A spinner on stderr while the body runs (shown only on a terminal)."""
    with render.console(stderr=True).status(message):
        yield


__all__ = [
    "KIND_ALIASES",
    "RepoOption",
    "VerboseOption",
    "handles_errors",
    "open_store",
    "parse_kind",
    "require_registry",
    "split_refs",
    "working",
]


def configure_logging(level: str) -> None:
    """Log at ``level`` (debug, info, warning...) to stderr with times; alembic's own
    messages only from warning up. ``--log-level`` of the long-running commands."""
    value = logging.getLevelName(level.upper())
    if not isinstance(value, int):
        raise typer.BadParameter(f"{level!r} is not a log level", param_hint="--log-level")
    logging.basicConfig(level=value, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(max(value, logging.WARNING))
