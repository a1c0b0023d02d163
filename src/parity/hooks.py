"""Observer hooks: keyword-only calls around apply, reads, retrievals, writes and refreshes.

Monitoring, audit, access control and usage statistics attach here instead of threading new
arguments through the layers (in the style of Hamilton's lifecycle hooks). Subclass
``Hooks``, override the calls you need, and hand instances to ``FeatureStore(hooks=[...])``
or ``store.hooks.add(...)``::

    class CountReads(Hooks):
        def after_online_read(self, *, plan, rows, seconds, error, **_):
            reads[plan.views] += rows

Every argument is passed by keyword and more may be added later: overrides take the ones
they use and ``**_`` for the rest.

- ``before_*`` calls run before anything is done; one that raises stops the operation with
  its exception and nothing is written or read (how access control refuses).
- ``after_*`` calls get ``error`` (None on success) and ``seconds`` (besides what the
  ``before_*`` call got); an exception raised in one is logged (logger ``parity.hooks``) and
  never changes the operation's outcome, unless the hook sets ``must_succeed = True`` (the
  audit log: an operation it cannot record fails with the hook's exception).
- ``shape_*`` calls may replace what a read returns (masking, decryption): each gets the
  value so far and returns a new one, or None to leave it; they run in the order the hooks
  were added, and an exception fails the read.

The calls and what they get:

==========================  ================================================================
``before_apply``            project, objects (None: the repo folder), delete_missing, author
``after_apply``             project, plan (what was done, None on error), author, seconds, error
``before_online_read``      project, plan (``parity.query.plan.FeaturePlan``), entities (columns)
``after_online_read``       project, plan, rows, response (None on error), entities, now_us
                            (the store clock the read used, µs), seconds, error
``before_historical``       project, plan, entity_rows
``after_historical``        project, plan, rows (None on error), seconds, error
``before_write``            project, kind, target, views, rows (None: not known yet), data,
                            to, catalog
``after_write``             project, kind, target, views, rows, stored, newest_event_us,
                            to, catalog, seconds, error
``after_registry_refresh``  project, revision, previous_revision (None at the first read)
``shape_online_response``   project, plan, entities, response -> OnlineResponse | None
``shape_historical``        project, plan, table -> pa.Table | None
==========================  ================================================================

``kind`` of a write is ``push``, ``write`` (``write_to_online_store``), ``materialize``,
``delete`` (``delete_entities``), ``stream`` or ``erase``; ``target`` is the push source or view name;
``data`` is the conformed Arrow table when there is one (pushes, direct writes, stream
batches); ``to`` is ``online``, ``offline`` or ``online_and_offline``; ``catalog`` the
definitions the write used (``parity.registry.catalog.Catalog``); ``newest_event_us`` the
newest event time written (µs since the epoch, None when nothing was).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import pyarrow as pa

    from parity.definitions import Definition
    from parity.online.reader import OnlineResponse
    from parity.query.plan import FeaturePlan
    from parity.registry.plan import Plan

__all__ = ["HOOK_NAMES", "HookSet", "Hooks"]

log = logging.getLogger("parity.hooks")
T = TypeVar("T")


class Hooks:
    """An observer; every method is a no-op until overridden (see the module docstring).

    Overrides may name only the arguments they use and take the rest as ``**_``.
    """

    must_succeed: bool = False
    """True: an exception in this hook's ``after_*`` calls fails the operation."""

    def before_apply(
        self,
        *,
        project: str,
        objects: Sequence[Definition] | None,
        delete_missing: bool | None,
        author: str | None,
        **future: Any,
    ) -> None:
        """Before an apply validates and writes; raise to refuse it."""

    def after_apply(
        self,
        *,
        project: str,
        plan: Plan | None,
        author: str | None,
        seconds: float,
        error: BaseException | None,
        **future: Any,
    ) -> None:
        """After an apply: ``plan`` is what was done."""

    def before_online_read(
        self, *, project: str, plan: FeaturePlan, entities: dict[str, list[Any]], **future: Any
    ) -> None:
        """Before an online read goes to the store; raise to refuse it."""

    def after_online_read(
        self,
        *,
        project: str,
        plan: FeaturePlan,
        rows: int,
        response: OnlineResponse | None,
        seconds: float,
        error: BaseException | None,
        **future: Any,
    ) -> None:
        """After an online read: ``rows`` entity rows answered with ``response``."""

    def before_historical(
        self, *, project: str, plan: FeaturePlan, entity_rows: int, **future: Any
    ) -> None:
        """Before a historical retrieval runs; raise to refuse it."""

    def after_historical(
        self,
        *,
        project: str,
        plan: FeaturePlan,
        rows: int | None,
        seconds: float,
        error: BaseException | None,
        **future: Any,
    ) -> None:
        """After a historical retrieval's result was computed (``rows`` rows)."""

    def before_write(
        self,
        *,
        project: str,
        kind: str,
        target: str,
        views: tuple[str, ...],
        rows: int | None,
        data: pa.Table | None,
        **future: Any,
    ) -> None:
        """Before rows are written (checked already); raise to refuse the write."""

    def after_write(
        self,
        *,
        project: str,
        kind: str,
        target: str,
        views: tuple[str, ...],
        rows: int | None,
        stored: int | None,
        seconds: float,
        error: BaseException | None,
        **future: Any,
    ) -> None:
        """After a write: ``rows`` accepted, ``stored`` online records written."""

    def after_registry_refresh(
        self, *, project: str, revision: int, previous_revision: int | None, **future: Any
    ) -> None:
        """After the definitions were read again because the registry's revision moved."""

    def shape_online_response(
        self,
        *,
        project: str,
        plan: FeaturePlan,
        entities: dict[str, list[Any]],
        response: OnlineResponse,
        **future: Any,
    ) -> OnlineResponse | None:
        """What an online read returns instead of ``response`` (None: ``response``)."""
        return None

    def shape_historical(
        self, *, project: str, plan: FeaturePlan, table: pa.Table, **future: Any
    ) -> pa.Table | None:
        """What a historical retrieval returns instead of ``table`` (None: ``table``)."""
        return None


HOOK_NAMES = tuple(n for n in vars(Hooks) if n.startswith(("before_", "after_", "shape_")))


class HookSet:
    """The observers of one store; calls reach only the hooks that override them."""

    def __init__(self, hooks: Iterable[Hooks] = ()):
        self._hooks: list[Hooks] = []
        self._by_name: dict[str, tuple[Hooks, ...]] = {n: () for n in HOOK_NAMES}
        self._calls: dict[str, tuple[tuple[Callable[..., Any], bool], ...]] = {
            n: () for n in HOOK_NAMES
        }
        for hook in hooks:
            self.add(hook)

    def add(self, hook: Hooks) -> Hooks:
        """Observe with ``hook`` from now on; returns it."""
        if not isinstance(hook, Hooks):
            raise TypeError(f"a hook must be a parity.hooks.Hooks, got {type(hook).__name__}")
        self._hooks.append(hook)
        self._index()
        return hook

    def remove(self, hook: Hooks) -> None:
        self._hooks.remove(hook)
        self._index()

    def _index(self) -> None:
        self._by_name = {
            name: tuple(
                h for h in self._hooks if getattr(type(h), name) is not getattr(Hooks, name)
            )
            for name in HOOK_NAMES
        }
        # bound once (a read's hooks are called per request): (method, must_succeed)
        self._calls = {
            name: tuple((getattr(h, name), h.must_succeed) for h in hooks)
            for name, hooks in self._by_name.items()
        }

    def __iter__(self) -> Iterator[Hooks]:
        return iter(self._hooks)

    def __len__(self) -> int:
        return len(self._hooks)

    def wants(self, name: str) -> bool:
        """Whether any hook overrides ``name`` (callers skip building arguments otherwise)."""
        return bool(self._by_name[name])

    def before(self, name: str, **kwargs: Any) -> None:
        """Call ``name`` on every hook that has it; an exception stops the operation."""
        for call, _ in self._calls[name]:
            call(**kwargs)

    def after(self, name: str, **kwargs: Any) -> None:
        """Call ``name`` on every hook that has it; an exception is logged, not raised,
        unless the hook ``must_succeed`` (raised once every hook was called)."""
        calls = self._calls[name]
        if len(calls) == 1 and calls[0][1]:  # one hook that must succeed: its error is ours
            calls[0][0](**kwargs)
            return
        failed: BaseException | None = None
        for call, must_succeed in calls:
            try:
                call(**kwargs)
            except Exception as exc:
                if must_succeed:
                    failed = failed or exc
                else:
                    owner = getattr(call, "__self__", call)
                    log.exception("hook %s.%s failed", type(owner).__name__, name)
        if failed is not None:
            raise failed

    def shape(self, name: str, key: str, value: T, **kwargs: Any) -> T:
        """``value`` passed through every hook's ``name`` (as the keyword ``key``)."""
        for call, _ in self._calls[name]:
            shaped = call(**kwargs, **{key: value})
            if shaped is not None:
                value = shaped
        return value

    def around(
        self,
        name: str,
        work: Callable[[], T],
        outcome: Callable[[T | None], dict[str, Any]],
        **context: Any,
    ) -> T:
        """``work()`` between ``before_<name>(**context)`` and ``after_<name>``, which gets the
        context, ``outcome(result)`` (``outcome(None)`` on error), ``seconds`` and ``error``."""
        self.before(f"before_{name}", **context)
        after = f"after_{name}"
        if not self._by_name[after]:
            return work()
        began = time.perf_counter()
        try:
            result = work()
        except BaseException as exc:
            self.after(after, **{**context, **outcome(None)}, seconds=_since(began), error=exc)
            raise
        self.after(after, **{**context, **outcome(result)}, seconds=_since(began), error=None)
        return result


def _since(began: float) -> float:
    return time.perf_counter() - began
