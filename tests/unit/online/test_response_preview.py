"""``repr`` of an online response: a bounded table of values and their statuses."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from parity import types as T
from parity.online.preview import MAX_FEATURES, MAX_ROWS
from parity.online.reader import OnlineResponse

STATUSES = st.sampled_from(["present", "missing", "expired", "invalid"])


def response(n: int, features: int, statuses: list[str]) -> OnlineResponse:
    names = [f"f{j}" for j in range(features)]
    values = {
        name: [None if statuses[i % len(statuses)] != "present" else i * 0.5 for i in range(n)]
        for name in names
    }
    return OnlineResponse(
        {"driver_id": list(range(n))},
        {name: T.Float64 for name in names},
        values,
        {name: [statuses[i % len(statuses)] for i in range(n)] for name in names},
        {name: [None] * n for name in names},
    )


@given(st.integers(0, 40), st.integers(1, 20), st.lists(STATUSES, min_size=1, max_size=4))
def test_the_repr_is_bounded_and_shows_statuses(n: int, features: int, statuses: list[str]):
    resp = response(n, features, statuses)
    lines = repr(resp).splitlines()
    assert lines[0].startswith(f"OnlineResponse: {n} row")
    shown_rows, shown_features = min(n, MAX_ROWS), min(features, MAX_FEATURES)
    assert lines[1].split() == ["driver_id", *[f"f{j}" for j in range(shown_features)]]
    body = lines[2 : 2 + shown_rows]
    for i, line in enumerate(body):
        status = statuses[i % len(statuses)]
        assert line.split()[0] == str(i)
        assert line.count(f"[{status}]") == (0 if status == "present" else shown_features)
    left = len(lines) - 2 - shown_rows
    assert left == (1 if n > MAX_ROWS or features > MAX_FEATURES else 0)
    if n > MAX_ROWS:
        assert f"{n - MAX_ROWS} more row" in lines[-1]
    if features > MAX_FEATURES:
        assert f"{features - MAX_FEATURES} more feature" in lines[-1]
