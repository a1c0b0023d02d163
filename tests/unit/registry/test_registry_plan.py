"""Plans: computed from live and desired specs by content hash, rendered like terraform."""

from __future__ import annotations

from parity.definitions import Entity, FeatureView, Field
from parity.registry import Change, Plan
from parity.registry.plan import Stored, compute_plan


def stored(obj) -> Stored:
    return Stored(obj.to_spec(), obj.content_hash())


def view(ttl: str = "2h") -> FeatureView:
    return FeatureView(
        name="driver_stats",
        entities=["driver"],
        source="src",
        schema=[Field(name="conv_rate", dtype="Float32")],
        ttl=ttl,
    )


def state(*objs) -> dict:
    return {(o.kind, o.name): stored(o) for o in objs}


def test_create_update_delete_and_unchanged_in_dependency_order():
    live = state(Entity("old"), Entity("driver"), view())
    desired = state(view("4h"), Entity("driver"), Entity("customer"))
    plan = compute_plan(live, desired, delete_missing=True)
    assert [(c.kind, c.name, c.action) for c in plan.changes] == [
        ("entity", "customer", "create"),
        ("entity", "driver", "unchanged"),
        ("entity", "old", "delete"),
        ("feature_view", "driver_stats", "update"),
    ]
    assert plan.has_changes
    assert plan.summary() == "1 to create, 1 to change, 1 to delete"
    assert plan.render() == "\n".join(
        [
            "+ entity customer",
            "- entity old",
            "~ feature_view driver_stats (minor)",
            "    ttl: 2h -> 4h",
            "",
            "Plan: 1 to create, 1 to change, 1 to delete (1 unchanged).",
        ]
    )
    assert str(plan) == plan.render()
    [update] = plan.of("update")
    assert update.old == view().to_spec() and update.new == view("4h").to_spec()
    assert [c.name for c in plan.of("create", "delete")] == ["customer", "old"]


def test_missing_objects_are_kept_without_delete_missing():
    plan = compute_plan(state(Entity("old")), state(Entity("new")))
    assert [(c.name, c.action) for c in plan.changes] == [("new", "create")]


def test_an_empty_plan_says_so():
    plan = compute_plan(state(Entity("a")), state(Entity("a")))
    assert not plan.has_changes
    assert plan.summary() == "0 to create, 0 to change, 0 to delete"
    assert plan.render() == "No changes; 1 object(s) up to date."
    assert Plan(()).render() == "No changes; 0 object(s) up to date."


def test_changes_are_plain_immutable_values():
    change = Change("entity", "a", "create", None, {"name": "a"})
    assert change.diff == ()
    assert Plan((change,)) == Plan((change,))
    assert hash(Plan((Change("entity", "a", "delete", None, None),)))
