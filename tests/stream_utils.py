"""Stream ingestion end to end, for the stream integration tests (brokers: ``stream_brokers``).

``write_repo`` builds a feature repo of stream sources, each feeding a plain view (latest
``amount``, ``items``) and an aggregated one (``amount_sum_1h``, ``count_1d``, hop 5 min);
``events`` makes a seeded event stream whose per-entity totals are exact (amounts are
multiples of 0.25); ``Consumer`` is a ``parity stream run`` subprocess; ``check_landed``
asserts what a drained source holds is what was sent, each event once.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

import parity
from parity import FeatureStore
from parity.ingest.rows import MESSAGE_ID
from stream_brokers import REDIS_URL, WAIT_S, Broker, wait_for

ENTITY_COUNT = 12
PLAIN = ["amount", "items"]
AGGREGATED = ["amount_sum_1h", "count_1d"]


# -- the repo --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceSpec:
    """One stream source of a test repo, and the two views it feeds."""

    name: str
    broker: Broker
    event_id: bool = False
    """Declare ``event_id_field="event_id"`` (else the broker's message id dedups)."""
    options: dict[str, Any] = field(default_factory=dict)
    """More ``StreamSource`` arguments: ``format``, ``max_lateness``, ``to``..."""
    aggregated: bool = True
    """Feed the aggregated view too (else the plain one alone: no write reads the online
    store before it appends to the offline log)."""


_HEAD = """
from datetime import timedelta
from parity import Aggregation, Entity, FeatureView, Field, FileSource, Float64, Int64
from parity import StreamSource

customer = Entity(name="customer", join_keys=["customer_id"], dtype="Int64")
"""
_SOURCE = """
{name} = StreamSource(
    name="{name}",
    batch_source=FileSource(
        name="{name}_batch", path="data/{name}.parquet", timestamp_field="ts"{eid}
    ),
    **{options!r},
)
{name}_latest = FeatureView(
    name="{name}_latest", entities=[customer], source={name},
    schema=[Field(name="amount", dtype=Float64), Field(name="items", dtype=Int64)],
)
"""
_WINDOWS = """
{name}_windows = FeatureView(
    name="{name}_windows", entities=[customer], source={name}, hop=timedelta(minutes=5),
    aggregations=[
        Aggregation(column="amount", function="sum", window=timedelta(hours=1)),
        Aggregation(function="count", window=timedelta(days=1), name="count_1d"),
    ],
)
"""
OLD_ROW_ENTITY = 1
"""The batch file's one row, 30 days old: superseded by the stream, outside every window."""


def write_repo(
    root: Path,
    specs: Sequence[SourceSpec],
    *,
    project: str = "streams",
    online_url: str = REDIS_URL,
) -> Path:
    """A repo (parity.yaml, definitions, one batch file per source), applied; its online
    store is Redis at ``online_url`` under a key prefix of its own."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    prefix = f"parity_test_{uuid.uuid4().hex[:10]}:"
    (root / "parity.yaml").write_text(
        f"project: {project}\nregistry: data/registry.db\noffline_store: {{ type: duckdb }}\n"
        f"online_store: {{ type: redis, url: '{online_url}', key_prefix: '{prefix}' }}\n"
    )
    text = _HEAD
    old = datetime.now(UTC) - timedelta(days=30)
    for s in specs:
        options = {"to": "online_and_offline", **s.broker.source_kwargs(), **s.options}
        eid = ', event_id_field="event_id"' if s.event_id else ""
        text += _SOURCE.format(name=s.name, eid=eid, options=options)
        text += _WINDOWS.format(name=s.name) if s.aggregated else ""
        cols: dict[str, pa.Array] = {
            "customer_id": pa.array([OLD_ROW_ENTITY], pa.int64()),
            "amount": pa.array([1000.0], pa.float64()),
            "items": pa.array([1000], pa.int64()),
            "ts": pa.array([old], pa.timestamp("us", tz="UTC")),
        }
        if s.event_id:
            cols["event_id"] = pa.array([-1], pa.int64())
        pq.write_table(pa.table(cols), root / "data" / f"{s.name}.parquet")
    (root / "definitions.py").write_text(text)
    with FeatureStore(root) as store:
        store.apply()
    return root


def teardown_repo(root: Path) -> None:
    """Remove the repo's online keys (Redis outlives the tmp folder)."""
    with FeatureStore(root) as store:
        store.teardown()


# -- events ----------------------------------------------------------------------------------


@dataclass
class Totals:
    """What a view should hold per entity after the events: the exact expectations."""

    sums: dict[int, float] = field(default_factory=dict)
    counts: dict[int, int] = field(default_factory=dict)
    last: dict[int, tuple[float, int]] = field(default_factory=dict)

    def add(self, e: dict[str, Any]) -> None:
        k = e["customer_id"]
        self.sums[k] = self.sums.get(k, 0.0) + e["amount"]
        self.counts[k] = self.counts.get(k, 0) + 1
        self.last[k] = (e["amount"], e["items"])


def events(seed: int, n: int, *, event_id: bool = False, span_s: float = 2400.0) -> list[dict]:
    """``n`` events of ``ENTITY_COUNT`` entities with strictly increasing event times
    spread over the ``span_s`` seconds ending a minute ago (inside every window for as long
    as a test runs); amounts are multiples of 0.25, so sums in any order are exact."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(seconds=span_s + 60)
    step = span_s / n
    out = []
    for i in range(n):
        e = {
            "customer_id": rng.randrange(ENTITY_COUNT),
            "amount": rng.randrange(-40, 400) * 0.25,
            "items": rng.randrange(1, 50),
            "ts": (start + timedelta(seconds=i * step)).isoformat(),
        }
        if event_id:
            e["event_id"] = i
        out.append(e)
    return out


def totals(evs: Iterable[dict[str, Any]]) -> Totals:
    t = Totals()
    for e in evs:
        t.add(e)
    return t


def payload(e: dict[str, Any]) -> bytes:
    return orjson.dumps(e)


BAD: dict[str, tuple[bytes, str]] = {
    "decode": (b"{not json", "decode"),
    "array": (b"[1, 2]", "decode"),
    "missing_field": (
        b'{"customer_id": 3, "items": 1, "ts": "2024-01-01T00:00:00Z"}',
        "missing_field",
    ),
    "null_key": (
        b'{"customer_id": null, "amount": 1.0, "items": 1, "ts": "2024-01-01T00:00:00Z"}',
        "null_key",
    ),
    "timestamp": (b'{"customer_id": 3, "amount": 1.0, "items": 1, "ts": "yesterday"}', "timestamp"),
    "type": (
        b'{"customer_id": 3, "amount": "abc", "items": 1, "ts": "2024-01-01T00:00:00Z"}',
        "type",
    ),
}
"""Bad messages of known kinds: name -> (payload, the reason they are dead-lettered for)."""


# -- the consumer process --------------------------------------------------------------------


def _env() -> dict[str, str]:
    """This checkout's Parity first on the path (the venv's editable install may be another)."""
    src = str(Path(parity.__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def parity_cli(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "parity.cli", *map(str, args)]


class Consumer:
    """A ``parity stream run`` subprocess, its output in a log file beside the repo."""

    def __init__(
        self, repo: Path, *args: str, batch_size: int = 200, claim_idle: float = 1.0
    ) -> None:
        self.log = repo.parent / f"consumer-{uuid.uuid4().hex[:8]}.log"
        cmd = parity_cli("stream", "run", "--repo", repo, "--claim-idle", str(claim_idle))
        cmd += ["--batch-size", str(batch_size), "--log-level", "warning", *args]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=_env())

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_started(self) -> Consumer:
        """Until it says it is consuming (SIGTERM is handled from then on: before, it kills)."""
        wait_for(
            lambda: "consuming " in self.output() or not self.alive,
            lambda: f"consumer started:\n{self.output()}",
        )
        assert self.alive, f"consumer exited {self.proc.returncode}:\n{self.output()}"
        return self

    def kill(self) -> None:
        """SIGKILL: nothing is finished, nothing committed, nothing said."""
        if self.alive:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def term(self) -> int:
        """SIGTERM, then its exit code (killed and failed if it takes over a minute)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"no exit {WAIT_S:g} s after SIGTERM:\n{self.output()}") from None


@contextlib.contextmanager
def consumers() -> Any:
    """A list to put ``Consumer``s in; each still running at the end is killed."""
    started: list[Consumer] = []
    try:
        yield started
    finally:
        for c in started:
            c.kill()


# -- what landed -----------------------------------------------------------------------------


def logged_message_ids(repo: Path, source: str) -> list[str]:
    """Every message id in the offline log of ``source`` (one per logged event)."""
    with FeatureStore(repo) as store:
        folder = store.config.resolve(store.config.offline_log) / source
    ids: list[str] = []
    for path in sorted(folder.glob("*.parquet")):
        ids += pq.read_table(path, columns=[MESSAGE_ID]).column(MESSAGE_ID).to_pylist()
    return ids


def check_landed(
    repo: Path,
    source: str,
    broker: Broker,
    evs: Sequence[dict[str, Any]],
    sent: Sequence[tuple[str, str]],
    *,
    aggregated: bool = True,
) -> None:
    """After a drain: what ``source`` holds is exactly what was sent, once.

    ``evs``: the good events (each counted once: a resent one is in ``sent`` twice, not
    here); ``sent``: (offset, label) of every message, label "good" or a ``BAD`` name.
    Online per entity: exact count and sum, the latest event's values; the offline log: each
    good message once, no other; ``get_historical_features`` at the same instant equals
    online; the dead-letter stream: exactly the bad messages' offsets, each copy with its
    payload and reason (dead letters are at least once: copies are allowed).
    """
    keys = list(range(ENTITY_COUNT))
    online, hist = online_and_historical(repo, source, keys, aggregated=aggregated)
    want = totals(evs)
    if aggregated:
        assert online["count_1d"] == [want.counts.get(k, 0) for k in keys], source
        assert online["amount_sum_1h"] == [want.sums.get(k) for k in keys], source
    assert online["amount"] == [want.last.get(k, (None, None))[0] for k in keys], source
    assert online["items"] == [want.last.get(k, (None, None))[1] for k in keys], source

    good = {o for o, label in sent if label == "good"}
    logged = logged_message_ids(repo, source)
    twice = sorted(o for o, n in Counter(logged).items() if n > 1)
    assert not twice, f"{source}: {len(twice)} message(s) logged more than once: {twice[:10]}"
    assert set(logged) == good, (
        f"{source}: not logged {sorted(good - set(logged))[:10]}, "
        f"logged but not sent as good {sorted(set(logged) - good)[:10]}"
    )
    for name in PLAIN + (AGGREGATED if aggregated else []):
        assert hist[name] == online[name], f"{source}: {name}: historical != online"

    bad = {o: label for o, label in sent if label != "good"}
    letters = broker.dead_letters()
    assert {d.offset for d in letters} == set(bad), f"{source}: {letters}"
    for d in letters:
        body, reason = BAD[bad[d.offset]]
        assert (d.payload, d.reason) == (body, reason), d
        assert d.detail, d


def online_and_historical(
    repo: Path, source: str, keys: Sequence[int], *, aggregated: bool = True
) -> tuple[dict, dict]:
    """Both views' features of ``source`` for ``keys``, online and from
    ``get_historical_features``, at one instant (the reading store's clock is frozen)."""
    at = datetime.now(UTC)
    refs = [f"{source}_latest:{f}" for f in PLAIN]
    refs += [f"{source}_windows:{f}" for f in AGGREGATED] if aggregated else []
    with FeatureStore(repo, clock=lambda: at) as store:
        online = store.get_online_features(refs, entities={"customer_id": list(keys)}).to_dict()
        entity_df = pa.table(
            {
                "customer_id": pa.array(list(keys), pa.int64()),
                "event_timestamp": pa.array([at] * len(keys), pa.timestamp("us", tz="UTC")),
            }
        )
        hist = store.get_historical_features(entity_df, refs).to_arrow().to_pydict()
    return online, hist
