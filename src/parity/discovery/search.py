"""Search of the registered objects: a full-text index (SQLite FTS5, in memory), bm25-ranked.

::

    hits = search(store, "conversion rate", tags={"team": "ranking"}, kind="feature_view")
    hits[0].kind, hits[0].name, hits[0].score, hits[0].features, hits[0].snippet

One document per entity, source, feature view, on-demand view, feature service and model
(roles are governance, not data: ``parity list roles`` shows them), with these columns and
bm25 weights (a match in a heavier column ranks higher):

============  ======  =====================================================================
name          10      the object's name (camelCase split too)
features      5       its features' names (a view's, an on-demand view's); an entity's keys
tags          3       ``key value`` of its tags
owner         3
description   2
refs          1.5     what it reads: a view's entities and source, an on-demand view's
                      inputs, a service's views and selected features (below the views
                      holding them), a model's service, a push source's files
details       1       its features' descriptions and tags; a file source's path, columns
============  ======  =====================================================================

The tokenizer is ``porter unicode61``: case and diacritics folded, words stemmed (``rates``
finds ``rate``), identifiers split at underscores (``conv_rate`` is ``conv`` and ``rate``).
A query's words are its runs of letters, digits and underscores, anything else separates
them, so no input is FTS5 syntax and none can fail. Each word is a prefix (``conv`` finds
``conv_rate``; ``conv_ra``, an identifier, is the phrase "conv ra" with a prefix at the end)
and all must match; only when no object matches them all do objects matching any of them
come back, ranked. ``conversion rate`` finds a feature ``conv_rate`` when its description
says "conversion", not from its name. A query that is exactly an object's name puts that
object first.

A second index holds one row per feature (of a view, an on-demand view, or selected by a
service), so a hit names the features that matched, best first (those with every word; when
none has them all, those with any); its ``snippet`` is the text that matched, the matches
marked ``**like this**`` (from the column matching the most words, a description first).

The index is built from a ``Catalog`` and cached per catalog object (the store's
``CatalogCache`` hands out one per registry revision), as lineage's graph is: the first search
of a revision pays the build, the next ones only the query. It is the same on SQLite and
PostgreSQL registries. With auth on, a store's search returns only the objects its actor may
``describe``.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from parity.definitions import KINDS, Definition
from parity.discovery.documents import document, feature_parts
from parity.governance.enforce import visible
from parity.registry.catalog import Catalog

__all__ = [
    "SEARCH_KINDS",
    "SearchHit",
    "SearchIndex",
    "index_for",
    "query_words",
    "search",
]

SEARCH_KINDS = tuple(k for k in KINDS if k != "role")
"""The kinds searched, in the order equal scores are listed."""
COLUMNS = ("name", "features", "tags", "owner", "description", "refs", "details")
WEIGHTS = (10.0, 5.0, 3.0, 3.0, 2.0, 1.5, 1.0)
PART_COLUMNS = ("name", "description", "tags")
"""The columns of the features index: each hit's matching features come from it."""
SNIPPET_ORDER = ("description", "details", "features", "tags", "owner", "refs", "name")
"""Which column's snippet a hit shows: the one marking the most words, the first of these
among equals."""
MAX_WORDS = 32
"""Words of a query beyond these are ignored (a pasted paragraph stays cheap)."""
TOKENIZER = "porter unicode61"

_WORD = re.compile(r"\w+")
_OPEN, _CLOSE = "\x02", "\x03"  # snippet markers no definition text holds


@dataclass(frozen=True)
class SearchHit:
    """One object found: its kind and name, its score (higher is better; bm25), the features
    that matched (``conv_rate`` of a view; ``view:feature`` of a service), and a snippet of
    what matched with the matching words marked ``**so**``."""

    kind: str
    name: str
    score: float
    features: tuple[str, ...]
    snippet: str
    description: str = ""
    owner: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "score": round(self.score, 6),
            "features": list(self.features),
            "snippet": self.snippet,
            "description": self.description,
            "owner": self.owner,
            "tags": dict(self.tags),
        }


def query_words(text: str) -> list[str]:
    """The words a query searches for: runs of letters, digits and underscores, each once
    (case folded), at most ``MAX_WORDS``. An identifier stays one word: ``conv_rate`` is
    the phrase "conv rate", the second part a prefix."""
    out: list[str] = []
    seen: set[str] = set()
    for word in _WORD.findall(text):
        key = word.casefold()
        if key not in seen:
            seen.add(key)
            out.append(word)
            if len(out) == MAX_WORDS:
                break
    return out


class SearchIndex:
    """The FTS5 index of one catalog (see the module): ``matches`` ranks its objects,
    ``details`` says what matched in some of them."""

    def __init__(self, catalog: Catalog):
        began = time.perf_counter()
        self.catalog = catalog
        self._lock = threading.Lock()
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self.objects: list[Definition] = []
        """The objects by rowid."""
        self.named: dict[str, list[int]] = {}
        """Rowids by name, case folded (an exact name comes first)."""
        self._known: dict[str, bool] = {}  # query word -> whether it has tokens
        self._build()
        self.build_seconds = time.perf_counter() - began
        """What building the index took."""

    def _build(self) -> None:
        db, cat = self._db, self.catalog
        # ``doc`` holds each object's own token (d17), so a query can be narrowed to a few
        # objects cheaply; user words never reach it (queries name the other columns)
        db.execute(
            f"CREATE VIRTUAL TABLE docs USING fts5({', '.join(COLUMNS)}, doc, kind UNINDEXED, "
            f"tokenize='{TOKENIZER}', prefix='2 3')"
        )
        db.execute(
            "CREATE VIRTUAL TABLE parts USING fts5(name, description, tags, doc, ref UNINDEXED, "
            f"tokenize='{TOKENIZER}')"
        )
        weights = ", ".join(map(str, WEIGHTS))
        db.execute(f"INSERT INTO docs(docs, rank) VALUES ('rank', 'bm25({weights}, 0)')")
        db.execute("INSERT INTO parts(parts, rank) VALUES ('rank', 'bm25(5, 1, 1, 0)')")
        # query words are checked here for tokens: a word the tokenizer drops whole would
        # make every AND query fail
        db.execute(f"CREATE VIRTUAL TABLE words USING fts5(w, tokenize='{TOKENIZER}')")
        db.execute("CREATE VIRTUAL TABLE word_tokens USING fts5vocab(words, 'instance')")
        docs, parts = [], []
        for kind in SEARCH_KINDS:
            for name in cat.names(kind):
                obj = cat.objects[kind][name]
                rowid = len(self.objects)
                self.objects.append(obj)
                self.named.setdefault(name.casefold(), []).append(rowid)
                docs.append((rowid, *document(cat, obj), f"d{rowid}", kind))
                parts += [(f"d{rowid}", *p) for p in feature_parts(cat, obj)]
        db.executemany(
            f"INSERT INTO docs(rowid, {', '.join(COLUMNS)}, doc, kind) VALUES (?{', ?' * 9})",
            docs,
        )
        # Empty rows, twice the objects: bm25's idf is log((N - n + 0.5) / (n + 0.5)),
        # clamped to ~0 for a word in half the documents or more, which in a small registry
        # (or for a word every object has) would rank by nothing; with them a word in every
        # object still counts (idf ~ log 2) and rarer words more. They hold no tokens, so no
        # query matches them.
        start = len(docs)
        db.executemany(
            "INSERT INTO docs(rowid, name) VALUES (?, '')",
            ((start + i,) for i in range(2 * start + 16)),
        )
        db.executemany(
            "INSERT INTO parts(doc, ref, name, description, tags) VALUES (?, ?, ?, ?, ?)", parts
        )

    def close(self) -> None:
        self._db.close()

    # -- querying -----------------------------------------------------------------------------
    def matches(
        self, words: Sequence[str], kinds: Sequence[str] | None = None
    ) -> list[tuple[int, float]]:
        """(rowid, score) of the objects matching every word (or, when none does, any),
        best first; a word the tokenizer reads as nothing is left out."""
        words = self._searchable(words)
        if not words:
            return []
        where = ""
        args: list[Any] = []
        if kinds is not None:
            where = f" AND kind IN ({', '.join('?' * len(kinds))})"
            args = list(kinds)
        sql = f"SELECT rowid, rank FROM docs WHERE docs MATCH ?{where} ORDER BY rank"
        with self._lock:
            found = self._db.execute(sql, [_match(words, "AND", COLUMNS), *args]).fetchall()
            if not found and len(words) > 1:
                found = self._db.execute(sql, [_match(words, "OR", COLUMNS), *args]).fetchall()
        return [(rowid, -score) for rowid, score in found]

    def details(self, words: Sequence[str], rowids: Sequence[int]) -> dict[int, tuple[str, ...]]:
        """Per rowid: the snippet (what matched, marked) and the matching features, best first."""
        words = self._searchable(words)
        if not words or not rowids:
            return {}
        marks = ", ".join(
            f"snippet(docs, {COLUMNS.index(c)}, '{_OPEN}', '{_CLOSE}', '…', 12)"
            for c in SNIPPET_ORDER
        )
        among = "doc : (" + " OR ".join(f"d{r}" for r in rowids) + ")"
        with self._lock:
            rows = self._db.execute(
                f"SELECT rowid, {marks} FROM docs WHERE docs MATCH ?",
                [f"({_match(words, 'OR', COLUMNS)}) AND {among}"],
            ).fetchall()
            features = self._features(words, "AND", rowids)
            rest = [r for r in rowids if r not in features]
            if rest and len(words) > 1:  # a hit no feature of which has every word
                features.update(self._features(words, "OR", rest))
        out = {}
        for rowid, *snippets in rows:
            # the column matching the most words; among equals, a description before a name
            shown = max(snippets, key=_marked_words)
            marked = shown.replace(_OPEN, "**").replace(_CLOSE, "**")
            out[rowid] = (marked, *features.get(rowid, ()))
        return out

    def _features(
        self, words: Sequence[str], op: str, rowids: Sequence[int]
    ) -> dict[int, list[str]]:
        """Per rowid, its features matching the words (``op``: all, or any), best first."""
        among = "doc : (" + " OR ".join(f"d{r}" for r in rowids) + ")"
        found: dict[int, list[str]] = {}
        for doc, ref in self._db.execute(
            "SELECT doc, ref FROM parts WHERE parts MATCH ? ORDER BY rank",
            [f"({_match(words, op, PART_COLUMNS)}) AND {among}"],
        ):
            found.setdefault(int(doc[1:]), []).append(ref)
        return found

    def _searchable(self, words: Sequence[str]) -> list[str]:
        """``words`` without those the tokenizer reads as nothing (a few scripts' letters
        Python counts as letters and this SQLite does not); remembered per word."""
        with self._lock:
            known, db = self._known, self._db
            new = [w for w in dict.fromkeys(words) if w not in known]
            if new:
                db.executemany("INSERT INTO words(rowid, w) VALUES (?, ?)", list(enumerate(new)))
                kept = {doc for (doc,) in db.execute("SELECT DISTINCT doc FROM word_tokens")}
                db.execute("DELETE FROM words")
                known.update((w, i in kept) for i, w in enumerate(new))
            out = [w for w in words if known[w]]
            if len(known) > 10_000:
                known.clear()
            return out


def _match(words: Sequence[str], op: str, columns: Sequence[str]) -> str:
    """The FTS5 query over ``columns``: each word a quoted prefix phrase (words hold letters
    and digits only, so quoting is all the escaping they need)."""
    terms = f" {op} ".join(f'"{w}"*' for w in words)
    return f"{{{' '.join(columns)}}} : ({terms})"


def _marked_words(snippet: str) -> int:
    """How many different words a snippet marks."""
    parts = snippet.split(_OPEN)[1:]
    return len({p.split(_CLOSE, 1)[0].casefold() for p in parts})


# -- the cache --------------------------------------------------------------------------------

_LOCK = threading.Lock()
_CACHE_SIZE = 4
_INDEXES: OrderedDict[int, tuple[weakref.ref[Catalog], SearchIndex]] = OrderedDict()


def index_for(catalog: Catalog) -> SearchIndex:
    """The catalog's index, built once per catalog object (the last few are kept)."""
    key = id(catalog)
    with _LOCK:
        hit = _INDEXES.get(key)
        if hit is not None and hit[0]() is catalog:
            _INDEXES.move_to_end(key)
            return hit[1]
    index = SearchIndex(catalog)
    with _LOCK:
        _INDEXES[key] = (weakref.ref(catalog), index)
        _INDEXES.move_to_end(key)
        while len(_INDEXES) > _CACHE_SIZE:  # not closed: a search may still hold it
            _INDEXES.popitem(last=False)
    return index


# -- search -----------------------------------------------------------------------------------


def search(
    source: Any,
    query: str,
    *,
    tags: Mapping[str, str] | None = None,
    owner: str | None = None,
    kind: str | Sequence[str] | None = None,
    limit: int = 20,
) -> list[SearchHit]:
    """The objects best matching ``query``, at most ``limit``, best first (see the module).

    ``source``: a ``FeatureStore`` (its current catalog; with auth on, only what its actor
    may describe) or a ``Catalog``. ``tags``: objects holding all of them; ``owner``: objects
    whose owner contains it (case-insensitive); ``kind``: one kind or several
    (``feature_view``...). A query without words returns the objects the filters select,
    by kind and name (none when there is no filter either).
    """
    kinds = _kinds(kind)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a whole number >= 1, got {limit!r}")
    catalog = source if isinstance(source, Catalog) else source.catalog()
    keep = _filter(source, tags, owner)
    words = query_words(query)
    if not words:
        if not (tags or owner or kind):
            return []
        found = [o for k in kinds or SEARCH_KINDS for o in _of_kind(catalog, k)]
        return [_hit(o, 0.0, ("",)) for o in keep(found)[:limit]]
    index = index_for(catalog)
    chosen: list[tuple[int, float]] = []
    exact = [
        i
        for i in index.named.get(query.strip().casefold(), ())
        if kinds is None or index.objects[i].kind in kinds
    ]
    for rowid, score in _ranked(index, words, kinds, exact):
        if keep([index.objects[rowid]]):
            chosen.append((rowid, score))
            if len(chosen) == limit:
                break
    shown = index.details(words, [r for r, _ in chosen])
    return [_hit(index.objects[r], s, shown.get(r, ("",))) for r, s in chosen]


def _ranked(
    index: SearchIndex, words: list[str], kinds: Sequence[str] | None, exact: list[int]
) -> Iterator[tuple[int, float]]:
    """The matches, best first, an object named exactly as the query first of all."""
    scores = dict(index.matches(words, kinds))  # in bm25 order (dicts keep it)
    for rowid in exact:
        if rowid in scores:
            yield rowid, scores.pop(rowid)
    yield from scores.items()


def _hit(obj: Definition, score: float, shown: tuple[str, ...]) -> SearchHit:
    return SearchHit(
        kind=obj.kind,
        name=obj.name,
        score=score,
        features=tuple(shown[1:]),
        snippet=shown[0],
        description=obj.description,
        owner=obj.owner,
        tags=dict(obj.tags),
    )


def _kinds(kind: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if kind is None:
        return None
    kinds = (kind,) if isinstance(kind, str) else tuple(kind)
    unknown = [k for k in kinds if k not in SEARCH_KINDS]
    if unknown or not kinds:
        raise ValueError(f"kind must be one of {', '.join(SEARCH_KINDS)}; got {kind!r}")
    return kinds


def _of_kind(catalog: Catalog, kind: str) -> list[Definition]:
    return [catalog.objects[kind][n] for n in catalog.names(kind)]


def _filter(
    source: Any, tags: Mapping[str, str] | None, owner: str | None
) -> Callable[[Iterable[Definition]], list[Definition]]:
    """A function keeping the objects that pass the tag, owner and access filters."""
    wanted = {str(k): str(v) for k, v in (tags or {}).items()}
    who = (owner or "").strip().casefold()
    store = None if isinstance(source, Catalog) else source

    def keep(objects: Iterable[Definition]) -> list[Definition]:
        out = [
            o
            for o in objects
            if all(o.tags.get(k) == v for k, v in wanted.items())
            and (not who or who in o.owner.casefold())
        ]
        return out if store is None else visible(store, out)

    return keep
