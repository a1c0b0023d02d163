"""Feature references typed on the command line: repeated, comma-separated, view:a,b."""

from __future__ import annotations

from parity.cli.common import split_refs


def test_refs_are_split_and_a_bare_feature_takes_the_previous_view():
    assert split_refs(None) == []
    assert split_refs(["v:a,b", "w:c", "d,", " x:* "]) == ["v:a", "v:b", "w:c", "w:d", "x:*"]
    assert split_refs(["a,v:b"]) == ["a", "v:b"]  # no view yet: left for the planner to refuse
