"""Every lifecycle state on the Python and the HTTP read paths (online and historical), the
state surviving an apply of the repo's files, impact weighing a retirement, and a service
pinning its views' major versions."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from tests.integration.test_server import Server

from cli_utils import parity
from parity import FeatureService, Lifecycle, LifecycleError
from parity.errors import ValidationError
from parity.lifecycle import ParityDeprecationWarning
from parity.store import FeatureStore

ROW = {"driver_id": [1001]}


BETA = """\
kind: feature_view
name: driver_beta
entities: [driver]
source: driver_stats_source
ttl: 30d
lifecycle: { state: draft, reason: trying it out }
schema:
  - { name: city, dtype: String }
"""


def _prepare(repo: Path) -> None:
    """driver_profile deprecated, driver_beta (in YAML) a draft, driver_rating retired."""
    (repo / "beta.yaml").write_text(BETA)
    parity("apply", "--repo", repo)
    with FeatureStore(repo) as store:
        assert store.get_feature_view("driver_beta").lifecycle == Lifecycle(
            state="draft", reason="trying it out"
        )
        store.set_lifecycle(
            "driver_profile", "deprecated", reason="merged", successor="driver_hourly_stats"
        )
        with pytest.raises(ValidationError, match="feature_service 'driver_activity'"):
            store.set_lifecycle("driver_rating", "retired", successor="driver_hourly_stats")
        store.set_lifecycle("driver_rating", "retired", successor="driver_hourly_stats",
                            reason="unreliable", allow_breaking=True)  # fmt: skip


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lifecycle") / "shop"
    parity("init", "shop", "--dir", path)
    parity("apply", "--repo", path)
    _prepare(path)
    return path


@pytest.fixture(scope="module")
def server(repo: Path) -> Iterator[Server]:
    srv = Server(repo)
    yield srv
    assert srv.stop() == 0


@pytest.fixture
def store(repo: Path) -> Iterator[FeatureStore]:
    with FeatureStore(repo) as s:
        yield s


def entity_frame(store: FeatureStore) -> pd.DataFrame:
    return pd.DataFrame({"driver_id": [1001], "event_timestamp": [pd.Timestamp.now(tz="UTC")]})


def test_states_are_recorded_as_versions_and_survive_an_apply_of_the_files(repo: Path):
    with FeatureStore(repo) as store:
        last = store.history("driver_rating")[-1]
        assert (last.version, last.bump) == ("2.0.0", "major")
        assert last.note.startswith("lifecycle retired (use driver_hourly_stats): unreliable")
        assert "applied with --allow-breaking" in last.note
        profile = store.history("driver_profile")[-1]
        assert (profile.version, profile.bump) == ("1.0.1", "patch")
    out = parity("apply", "--repo", repo).stdout  # the files say nothing of lifecycles
    assert "No changes" in out
    with FeatureStore(repo) as store:
        assert store.get_feature_view("driver_rating").state == "retired"
        assert store.get_feature_view("driver_profile").lifecycle.successor == "driver_hourly_stats"
        assert store.get_feature_view("driver_hourly_stats").state == "active"


def test_python_reads_of_each_state(store: FeatureStore):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store.get_online_features(["driver_hourly_stats:conv_rate"], entities=ROW)  # active
    with pytest.warns(
        ParityDeprecationWarning,
        match="'driver_profile' is deprecated: merged; use driver_hourly_stats",
    ):
        store.get_online_features(["driver_profile:city"], entities=ROW)
    with pytest.raises(
        LifecycleError, match=r"'driver_rating' is retired .*use driver_hourly_stats"
    ) as retired:
        store.get_online_features(["driver_rating:driver_rating"], entities=ROW)
    assert retired.value.code == "feature_retired"
    with pytest.raises(LifecycleError, match="retired"):
        store.get_online_features("driver_activity", entities=ROW)  # the service reads it
    with pytest.raises(LifecycleError, match="include_drafts=True") as draft:
        store.get_online_features(["driver_beta:city"], entities=ROW)
    assert draft.value.code == "draft_not_requested"
    store.get_online_features(["driver_beta:city"], entities=ROW, include_drafts=True)
    # historical retrieval alike
    frame = entity_frame(store)
    with pytest.raises(LifecycleError, match="retired"):
        store.get_historical_features(frame, ["driver_rating:driver_rating"])
    with pytest.raises(LifecycleError, match="draft"):
        store.get_historical_features(frame, ["driver_beta:city"])
    got = store.get_historical_features(frame, ["driver_beta:city"], include_drafts=True)
    assert got.to_arrow().column_names[-1] == "city"
    with pytest.warns(ParityDeprecationWarning):
        store.get_historical_features(frame, ["driver_profile:city"])


def test_http_reads_of_each_state(server: Server):
    def read(features, **headers):
        return server.client.post(
            "/get-online-features", json={"features": features, "entities": ROW}, headers=headers
        )

    plain = read(["driver_hourly_stats:conv_rate"])
    assert plain.status_code == 200 and "deprecation" not in plain.headers
    old = read(["driver_profile:city"])
    assert old.status_code == 200
    assert old.headers["deprecation"] == "true"
    assert (
        old.headers["x-parity-deprecated"]
        == "feature_view:driver_profile (use driver_hourly_stats)"
    )
    gone = read(["driver_rating:driver_rating"])
    assert gone.status_code == 410 and gone.headers["x-parity-error-code"] == "feature_retired"
    assert "use driver_hourly_stats instead" in gone.json()["error"]["message"]
    draft = read(["driver_beta:city"])
    assert (
        draft.status_code == 403 and draft.headers["x-parity-error-code"] == "draft_not_requested"
    )
    asked = read(["driver_beta:city"], **{"X-Parity-Include-Drafts": "true"})
    assert asked.status_code == 200
    after = read(["driver_beta:city"])  # asking is per request
    assert after.status_code == 403
    metrics = server.client.get("/metrics").text
    assert 'parity_deprecated_reads_total{object="feature_view:driver_profile"} 1.0' in metrics


def test_a_service_pinning_versions_refuses_reads_once_a_view_moved_major(tmp_path: Path):
    path = tmp_path / "shop"
    parity("init", "shop", "--dir", path)
    parity("apply", "--repo", path)
    with FeatureStore(path) as store:
        pinned = FeatureService(name="pinned", features=["driver_profile:city"], pin_versions=True)
        store.apply([pinned])
        store.get_online_features("pinned", entities=ROW)
        view = store.get_feature_view("driver_profile")
        store.apply([view.model_copy(update={"ttl": timedelta(days=1)})], allow_breaking=True)
        with pytest.raises(
            LifecycleError, match=r"driver_profile' is at 2\.0\.0, the service pinned 1\.0\.0"
        ) as moved:
            store.get_online_features("pinned", entities=ROW)
        assert moved.value.code == "version_pinned"
        store.get_online_features(["driver_profile:city"], entities=ROW)  # not through it: fine
        store.apply([pinned.model_copy(update={"description": "re-pinned"})])
        store.get_online_features("pinned", entities=ROW)  # its new version pins 2.0.0
        assert store.get_feature_service("pinned").to_spec()["pin_versions"] is True
        assert "pin_versions" not in store.get_feature_service("driver_activity").to_spec()


def test_lifecycle_cli_and_bad_input(tmp_path: Path):
    path = tmp_path / "shop"
    parity("init", "shop", "--dir", path)
    parity("apply", "--repo", path)
    out = parity("lifecycle", "driver_profile", "deprecated", "--reason", "old",
                 "--successor", "driver_hourly_stats", "--repo", path).stdout  # fmt: skip
    assert "driver_profile is now deprecated, version 1.0.1" in out
    bad = parity("lifecycle", "driver_profile", "gone", "--repo", path, code=1)
    assert "the state is one of draft, active, deprecated, retired, not 'gone'" in bad.stderr
    nobody = parity(
        "lifecycle", "driver_profile", "retired", "--successor", "nope", "--repo", path, code=1
    )
    assert "lifecycle.successor: no object is called 'nope'" in nobody.stderr
    refused = parity("lifecycle", "driver_rating", "retired", "--repo", path, code=1)
    assert "breaks feature_service 'driver_activity'" in refused.stderr
    history = parity("history", "driver_profile", "--repo", path).stdout
    assert "note: lifecycle deprecated (use driver_hourly_stats): old" in history
    back = parity("lifecycle", "driver_profile", "active", "--repo", path).stdout
    assert "now active, version 1.0.2" in back
