"""Search over a catalog built in memory: a table of queries and their best hit, the column
weights (a name beats a description), prefixes and identifiers, the filters, the features
and snippets a hit names, the AND-then-OR rule, the cache per catalog, and, for any text at
all, no error and no hit that matches none of the words."""

from __future__ import annotations

import gc
import sqlite3

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parity.discovery.documents import document
from parity.discovery.search import (
    COLUMNS,
    SEARCH_KINDS,
    TOKENIZER,
    SearchIndex,
    index_for,
    query_words,
    search,
)
from parity.registry.catalog import Catalog

from .catalog import OBJECTS, catalog

CAT = catalog()


@pytest.mark.parametrize(
    ("query", "kind", "name"),
    [
        ("churn", "feature_view", "churn_signals"),  # its name, over a description saying it
        ("chargeback", "feature_view", "payment_risk"),  # a feature's name over a description
        ("conversion rate", "on_demand_feature_view", "conv_boost"),  # its description
        ("avg daily", "feature_view", "driver_stats"),  # a feature's name, in parts
        ("avg_dai", "feature_view", "driver_stats"),  # an identifier, a prefix at its end
        ("ranker", "model", "ranker_v2"),
        ("dispatch", "source", "trips_source"),
        ("fleet", "entity", "driver"),
        ("basket", "feature_view", "basket_stats"),
        ("offers accepted", "feature_view", "driver_stats"),  # a feature's description
        ("driver_stats", "feature_view", "driver_stats"),  # an exact name comes first
        ("DRIVER_STATS", "feature_view", "driver_stats"),  # whatever its case
        ("ranking_service", "feature_service", "ranking_service"),
        ("Fraud!!", "feature_service", "risk_service"),  # punctuation is no syntax
    ],
)
def test_the_best_hit(query: str, kind: str, name: str) -> None:
    hits = search(CAT, query)
    assert hits, query
    assert (hits[0].kind, hits[0].name) == (kind, name), [(h.kind, h.name) for h in hits]


def test_a_name_outranks_a_description_and_scores_fall() -> None:
    hits = search(CAT, "churn")
    assert [h.name for h in hits] == ["churn_signals", "basket_stats"]
    assert hits[0].score > hits[1].score > 0
    hits = search(CAT, "chargeback")  # feature name (5) over a feature's description (1)
    names = [h.name for h in hits]
    assert names.index("payment_risk") < names.index("refund_history")
    scores = [h.score for h in search(CAT, "stats")]
    assert scores == sorted(scores, reverse=True)


def test_a_view_holding_a_feature_ranks_above_the_service_selecting_it() -> None:
    names = [h.name for h in search(CAT, "avg_daily_trips")]
    assert names.index("driver_stats") < names.index("ranking_service")


def test_prefixes_match_and_the_matching_features_are_named() -> None:
    hits = {h.name: h for h in search(CAT, "conv")}
    assert hits["driver_stats"].features == ("conv_rate",)
    assert hits["conv_boost"].features == ("boosted_conv",)
    assert set(hits["ranking_service"].features) == {
        "driver_stats:conv_rate",
        "conv_boost:boosted_conv",
    }
    assert "**conv**_rate" in hits["driver_stats"].snippet


def test_conversion_rate_finds_conv_rate_only_where_its_text_says_conversion() -> None:
    hits = {h.name: h for h in search(CAT, "conversion rate")}
    assert hits["driver_stats"].features == ("conv_rate",)  # not acc_rate (only "rate")
    assert "partner_stats" not in hits  # its conv_rate is "Share of offers taken up."
    assert "**Conversion** **rate**" in hits["driver_stats"].snippet


def test_every_word_must_match_unless_no_object_has_them_all() -> None:
    assert [h.name for h in search(CAT, "churn lately")] == ["churn_signals"]
    either = {h.name for h in search(CAT, "dispatch chargeback")}  # no object has both
    assert {"trips_source", "payment_risk"} <= either


def test_filters_by_tags_owner_and_kind() -> None:
    assert [h.name for h in search(CAT, "stats", tags={"team": "ranking"})] == ["driver_stats"]
    risky = search(CAT, "", owner="RISK-team")  # no words: the filtered objects, by kind
    assert [h.name for h in risky] == ["payment_risk", "refund_history"]
    assert all(h.score == 0 for h in risky)
    assert {h.kind for h in search(CAT, "conv", kind="feature_service")} == {"feature_service"}
    both = search(CAT, "conv", kind=["feature_view", "model"])
    assert {h.kind for h in both} == {"feature_view"}
    assert search(CAT, "stats", tags={"team": "ranking", "tier": "gold"}) == []
    assert [h.name for h in search(CAT, "stats", limit=1)] == ["partner_stats"]


def test_roles_and_empty_queries_give_nothing_and_bad_arguments_are_refused() -> None:
    assert all(h.kind != "role" for h in search(CAT, "conversion"))
    assert search(CAT, "") == [] and search(CAT, "  !? ") == []
    with pytest.raises(ValueError, match="kind must be one of"):
        search(CAT, "x", kind="role")
    with pytest.raises(ValueError, match="limit"):
        search(CAT, "x", limit=0)


def test_hits_carry_the_objects_facts_and_json() -> None:
    (hit,) = search(CAT, "dispatch")
    assert hit.owner == "data-eng@example.com"
    assert hit.description.startswith("Raw trip events")
    assert hit.to_json()["snippet"] == "Raw trip events from the **dispatch** system."


def test_the_index_is_cached_per_catalog_object() -> None:
    one = catalog()
    index = index_for(one)
    assert index_for(one) is index and index.catalog is one
    other = catalog()  # the same objects at another revision: another index
    assert index_for(other) is not index
    del index, one
    gc.collect()
    again = catalog()  # may reuse the freed catalog's id: never its index
    assert index_for(again).catalog is again
    assert index_for(again).build_seconds >= 0


def test_a_small_registry_still_ranks_a_word_every_object_holds() -> None:
    """bm25's idf is ~0 for a word in half the documents; the index pads them out."""
    from parity import Entity

    cat = Catalog.of(
        [
            Entity(name="alpha_team", join_keys=["a"], owner="team"),
            Entity(name="beta", join_keys=["b"], owner="team", description="team"),
        ]
    )
    hits = search(cat, "team")
    assert [h.name for h in hits] == ["alpha_team", "beta"] and hits[1].score > 0


# -- any text at all ------------------------------------------------------------------------

_TOKENS = sqlite3.connect(":memory:")
_TOKENS.execute(f"CREATE VIRTUAL TABLE t USING fts5(x, tokenize='{TOKENIZER}')")
_TOKENS.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")


def tokens(text: str) -> list[str]:
    """``text`` as the index's tokenizer reads it (folded, stemmed), in order."""
    _TOKENS.execute("INSERT INTO t(rowid, x) VALUES (1, ?)", (text,))
    found = [t for t, _ in _TOKENS.execute("SELECT term, offset FROM v ORDER BY offset")]
    _TOKENS.execute("DELETE FROM t")
    return found


DOC_TOKENS = {
    (o.kind, o.name): set(tokens(" ".join(document(CAT, o))))
    for o in OBJECTS
    if o.kind in SEARCH_KINDS
}
VOCABULARY = sorted({t for ts in DOC_TOKENS.values() for t in ts})


def matches(word: str, doc: set[str]) -> bool:
    """Whether every token of ``word`` begins some token of ``doc`` (what a prefix phrase
    needs at least)."""
    parts = tokens(word)
    return bool(parts) and all(any(t.startswith(p) for t in doc) for p in parts)


words = st.one_of(
    st.text(max_size=12),
    st.sampled_from(VOCABULARY),
    st.sampled_from(VOCABULARY).map(lambda w: w[: max(1, len(w) // 2)]),
    st.sampled_from(['"', "*", "'", "(", ")", "NEAR", "AND", "OR", "NOT", "^", ":", "{", "-"]),
)


@given(st.lists(words, max_size=6).map(" ".join), st.integers(1, 30))
def test_any_text_is_safe_and_every_hit_matches_a_word(query: str, limit: int) -> None:
    hits = search(CAT, query, limit=limit)
    assert len(hits) <= limit
    asked = query_words(query)
    if hits:
        assert asked
    for hit in hits:
        doc = DOC_TOKENS[(hit.kind, hit.name)]
        assert any(matches(w, doc) for w in asked), (query, hit.kind, hit.name)


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_any_unicode_is_safe(query: str) -> None:
    search(CAT, query)
    search(CAT, query, kind="feature_view", tags={"team": query}, owner=query)


def test_columns_are_what_the_weights_say() -> None:
    assert COLUMNS[0] == "name" and len(document(CAT, OBJECTS[4])) == len(COLUMNS)
    assert SearchIndex(CAT).objects[0].kind == "entity"
