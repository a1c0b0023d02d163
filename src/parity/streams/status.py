"""What ``parity stream status`` shows: the broker's view of each group, and the counters
the consumers recorded in the registry (``parity.registry.streams``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from parity.definitions import StreamSource
from parity.errors import ObjectNotFoundError
from parity.streams import consumer as make_consumer
from parity.streams.base import ConsumerOptions, consumer_name
from parity.streams.freshness import FreshnessWindow

if TYPE_CHECKING:
    from parity.store import FeatureStore

__all__ = ["source_status"]

_QUANTILES = (0.5, 0.9, 0.99)


def source_status(
    store: FeatureStore, names: Sequence[str] | None, *, minutes: int, now_s: float
) -> list[dict[str, Any]]:
    """One JSON-ready dict per stream source (all, or ``names``)."""
    from parity.registry.streams import StreamConsumers

    catalog = store.catalog(fresh=True)
    sources = sorted(
        (s for s in catalog.objects["source"].values() if isinstance(s, StreamSource)),
        key=lambda s: s.name,
    )
    if names is not None:
        known = {s.name for s in sources}
        missing = [n for n in names if n not in known]
        if missing:
            raise ObjectNotFoundError(
                "stream source",
                missing[0],
                store.project,
                hint=f"stream sources: {', '.join(sorted(known)) or 'none'}",
            )
        sources = [s for s in sources if s.name in names]
    records = StreamConsumers(store.registry).list([s.name for s in sources]) if sources else []
    out = []
    for source in sources:
        mine = [r for r in records if r.source == source.name]
        out.append(_one(source, mine, minutes, now_s))
    return out


def _one(source: StreamSource, records: list[Any], minutes: int, now_s: float) -> dict[str, Any]:
    row: dict[str, Any] = {
        "source": source.name,
        "broker": source.broker,
        "stream": source.stream,
        "group": source.group,
        "dead_letter_stream": source.dead_letter_stream,
        "pending": None,
        "unconsumed": None,
        "stream_length": None,
        "last_delivered": None,
        "last_committed": None,
        "dead_letters_in_stream": None,
        "broker_error": None,
    }
    try:
        with make_consumer(source, ConsumerOptions(consumer_name())) as c:
            st = c.status()
        row.update(
            pending=st.pending,
            unconsumed=st.unconsumed,
            stream_length=st.stream_length,
            last_delivered=st.last_delivered,
            last_committed=st.last_committed,
            dead_letters_in_stream=st.dead_letters,
        )
    except Exception as exc:  # the registry's counters are still worth showing
        row["broker_error"] = f"{type(exc).__name__}: {exc}"
    dead: Counter[str] = Counter()
    event, append = FreshnessWindow(), FreshnessWindow()
    for r in records:
        dead.update(r.dead_letters)
        event = event.merge(FreshnessWindow.from_json(r.freshness.get("event") or {}))
        append = append.merge(FreshnessWindow.from_json(r.freshness.get("append") or {}))
    row.update(
        consumers_running=sum(1 for r in records if r.state == "running"),
        consumers=[
            {
                "consumer": r.consumer,
                "owner": r.owner,
                "state": r.state,
                "heartbeat_at": r.heartbeat_at.isoformat(),
                "consumed": r.consumed,
                "written": r.written,
                "last_offset": r.last_offset,
                "error": r.error,
            }
            for r in records
        ],
        consumed=sum(r.consumed for r in records),
        written=sum(r.written for r in records),
        dead_letters=dict(dead),
        freshness_event=_pcts(event, minutes, now_s),
        freshness_append=_pcts(append, minutes, now_s),
        freshness_events=event.count(minutes=minutes, now_s=now_s),
    )
    return row


def _pcts(w: FreshnessWindow, minutes: int, now_s: float) -> dict[str, float | None]:
    found = w.percentiles(_QUANTILES, minutes=minutes, now_s=now_s)
    return {f"p{round(q * 100)}": v for q, v in found.items()}
