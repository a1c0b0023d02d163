"""The audit log's records and their hash chain.

Each record's ``hash`` is SHA-256 over its canonical form: a JSON array of the project,
sequence number, time (UTC ISO 8601, microseconds), principal, action, resources, counts,
outcome, detail, token id and ``prev_hash`` (the previous record's hash; 64 zeros for the
first), written with sorted keys, no spaces and ASCII escapes, so every process and every
database computes the same bytes. The head row (``parity_audit_heads``) holds the newest
record's number and hash, which makes a deleted newest record visible too.

``ChainCheck`` walks the records in order and names the first that does not fit: an edited
record (its hash is not the hash of its contents), a deleted one (a gap in the numbers, or
the head naming a record that is not there) or an inserted one (a number out of order, or
a ``prev_hash`` that is not the previous record's hash).

What the chain cannot show: someone able to write the registry database may rewrite every
record and the head consistently. Keep the head's hash somewhere else (``parity audit
verify`` prints it) and pass it to ``verify(expect_head=...)`` to detect that.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "GENESIS",
    "AuditRecord",
    "ChainCheck",
    "Verification",
    "canonical",
    "chain_hash",
]

GENESIS = "0" * 64
"""The ``prev_hash`` of a project's first record."""


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


_text = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]
_LISTS: dict[tuple[str, ...], str] = {}


def resources_json(resources: Iterable[str]) -> str:
    """The resources as compact ASCII JSON (remembered: reads repeat the same few lists)."""
    key = resources if isinstance(resources, tuple) else tuple(resources)
    found = _LISTS.get(key)
    if found is None:
        if len(_LISTS) > 4096:
            _LISTS.clear()
        found = _LISTS[key] = "[" + ",".join(map(_text, key)) + "]"
    return found


def counts_json(counts: Mapping[str, int]) -> str:
    """The counts as compact ASCII JSON with sorted keys."""
    return json.dumps(counts, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def canonical(
    *,
    project: str,
    seq: int,
    at: datetime,
    principal: str,
    action: str,
    resources: Iterable[str],
    counts: Mapping[str, int],
    outcome: str,
    detail: str,
    token_id: str | None,
    prev_hash: str,
    _resources: str | None = None,
    _counts: str | None = None,
) -> bytes:
    """The bytes a record's hash is taken over (see the module docstring): exactly
    ``json.dumps([...], sort_keys=True, separators=(",", ":"), ensure_ascii=True)`` of the
    fields in order, assembled from parts so the writer can reuse what it stores."""
    parts = (
        _text(project),
        str(int(seq)),
        _text(_iso(at)),
        _text(principal),
        _text(action),
        _resources if _resources is not None else resources_json(resources),
        _counts if _counts is not None else counts_json(counts),
        _text(outcome),
        _text(detail),
        "null" if token_id is None else _text(token_id),
        _text(prev_hash),
    )
    return ("[" + ",".join(parts) + "]").encode()


def chain_hash(**fields: Any) -> str:
    """SHA-256 (hex) of ``canonical(**fields)``."""
    return hashlib.sha256(canonical(**fields)).hexdigest()


@dataclass(frozen=True)
class AuditRecord:
    """One audit record. ``resources`` are ``kind:name`` texts, ``counts`` numbers such as
    ``{"keys": 3, "rows": 3}``; never feature values or secrets. ``token_id`` is the public
    id of the token the actor used (None without one)."""

    project: str
    seq: int
    at: datetime
    principal: str
    action: str
    resources: tuple[str, ...]
    counts: Mapping[str, int]
    outcome: str
    detail: str
    token_id: str | None
    prev_hash: str
    hash: str

    def expected_hash(self) -> str:
        """The hash this record's contents should have."""
        return chain_hash(
            project=self.project,
            seq=self.seq,
            at=self.at,
            principal=self.principal,
            action=self.action,
            resources=self.resources,
            counts=self.counts,
            outcome=self.outcome,
            detail=self.detail,
            token_id=self.token_id,
            prev_hash=self.prev_hash,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": _iso(self.at),
            "principal": self.principal,
            "action": self.action,
            "resources": list(self.resources),
            "counts": dict(self.counts),
            "outcome": self.outcome,
            "detail": self.detail,
            "token_id": self.token_id,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class Verification:
    """What ``verify`` found. ``ok``: the chain is intact (and matches ``expect_head`` when
    one was given). Otherwise ``broken_seq`` is the first record that does not fit (for a
    deleted newest record: the number the head names) and ``problem`` says how."""

    ok: bool
    records: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    problem: str = ""
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "broken_seq": self.broken_seq,
            "problem": self.problem,
        }


class ChainCheck:
    """Feed records in ``seq`` order (``feed``), then ``finish(head)``; stops at the first
    break, so a long log is checked in one pass with bounded memory."""

    def __init__(self, expect_head: tuple[int, str] | None = None) -> None:
        self.expect_head = expect_head
        self.count = 0
        self.last_seq = 0
        self.last_hash = GENESIS
        self.before_last_hash = ""
        self.broken: tuple[int, str] | None = None

    def feed(self, records: Iterable[AuditRecord]) -> bool:
        """Check these records; False once the chain is broken (feeding more is pointless)."""
        if self.broken is not None:
            return False
        for r in records:
            self.count += 1
            want = self.last_seq + 1
            if r.seq > want:
                missing = f"record {want}" if r.seq == want + 1 else f"records {want}-{r.seq - 1}"
                self.broken = (
                    want,
                    f"{missing} deleted: the chain jumps from {want - 1} to {r.seq}",
                )
                return False
            if r.seq < want:  # only when rows come out of order: an inserted duplicate number
                self.broken = (r.seq, f"record {r.seq} inserted: its number repeats")
                return False
            if r.prev_hash != self.last_hash:
                if r.prev_hash == self.before_last_hash and self.count > 1:
                    self.broken = (
                        r.seq - 1,
                        f"record {r.seq - 1} inserted: record {r.seq} follows record {r.seq - 2}",
                    )
                else:
                    self.broken = (
                        r.seq,
                        f"record {r.seq} replaced: its prev_hash is not the hash of record "
                        f"{r.seq - 1}",
                    )
                return False
            if r.expected_hash() != r.hash:
                self.broken = (r.seq, f"record {r.seq} edited: its contents do not match its hash")
                return False
            kept = self.expect_head
            if kept is not None and r.seq == kept[0] and r.hash != kept[1]:
                self.broken = (r.seq, f"record {r.seq} differs from the kept head: rewritten")
                return False
            self.before_last_hash = self.last_hash
            self.last_seq, self.last_hash = r.seq, r.hash
        return True

    def finish(self, head: tuple[int, str] | None) -> Verification:
        """The verdict, given the head row (None: there is none)."""
        head_seq, head_hash = head if head is not None else (0, GENESIS)
        result = self._verdict(head)
        if result is None and self.expect_head is not None and self.expect_head[0] > head_seq:
            kept = self.expect_head[0]
            result = (head_seq + 1, f"records after {head_seq} deleted: the kept head is {kept}")
        if result is None:
            return Verification(True, self.count, head_seq, head_hash)
        seq, problem = result
        return Verification(False, self.count, head_seq, head_hash, seq, problem)

    def _verdict(self, head: tuple[int, str] | None) -> tuple[int, str] | None:
        if self.broken is not None:
            return self.broken
        if head is None:
            if self.count:
                return (1, "the chain's head is missing (parity_audit_heads has no row)")
            return None
        head_seq, head_hash = head
        if head_seq > self.last_seq:
            gone = "record" if head_seq == self.last_seq + 1 else "records"
            span = str(head_seq) if gone == "record" else f"{self.last_seq + 1}-{head_seq}"
            return (
                self.last_seq + 1,
                f"{gone} {span} deleted: the newest record should be {head_seq}",
            )
        if head_seq < self.last_seq:
            return (head_seq + 1, f"record {head_seq + 1} inserted after the head ({head_seq})")
        if head_hash != self.last_hash:
            return (head_seq, f"record {head_seq} replaced: the head holds another hash")
        return None
