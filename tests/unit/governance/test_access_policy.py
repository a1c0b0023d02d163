"""Role/Permission definitions and the access policy: default deny, kinds, name globs, tags,
purposes, the built-in admin, and the decision cache following the catalog's revision."""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parity import DefinitionError, Permission, PermissionDeniedError, Role
from parity.definitions import KINDS, from_spec
from parity.governance.access import ACTIONS, Access, Resource, grants
from parity.governance.context import Actor
from parity.registry.catalog import Catalog
from parity.repo.yaml_form import parse_yaml

# -- definitions ---------------------------------------------------------------------------


def test_a_role_round_trips_through_its_spec() -> None:
    role = Role(
        "analyst",
        permissions=[
            Permission(actions=["read_online"], kinds=["feature_view"], names="driver_*"),
            Permission(actions=["read_pii"], tags={"team": "risk"}, purposes=["fraud"]),
        ],
        owner="risk",
    )
    again = from_spec("role", role.to_spec())
    assert again == role
    assert again.content_hash() == role.content_hash()
    assert "role" in KINDS and list(KINDS)[-1] == "role"
    from parity.definitions.role import RESOURCE_KINDS

    assert tuple(KINDS) == RESOURCE_KINDS


@pytest.mark.parametrize(
    ("permission", "field", "bad"),
    [
        ({"actions": ["fly"]}, "actions", "'fly'"),
        ({"actions": []}, "actions", "at least one action"),
        ({"actions": ["describe"], "kinds": ["table"]}, "kinds", "'table'"),
        ({"actions": ["describe"], "names": []}, "names", "at least one name"),
        ({"actions": ["describe"], "purposes": []}, "purposes", "at least one purpose"),
    ],
)
def test_a_bad_permission_names_the_role_and_field(permission, field, bad) -> None:
    with pytest.raises(DefinitionError) as err:
        Role("ops", permissions=[permission])
    text = str(err.value)
    assert "role 'ops'" in text and field in text and bad in text


def test_the_yaml_form_builds_the_same_role() -> None:
    [obj] = parse_yaml(
        """
kind: role
name: reader
description: reads driver features
permissions:
  - actions: [read_online, describe]
    kinds: [feature_view]
    names: ["driver_*"]
    tags: {team: risk}
    purposes: [fraud]
"""
    )
    assert obj.definition == Role(
        "reader",
        description="reads driver features",
        permissions=[
            Permission(
                actions=["read_online", "describe"],
                kinds=["feature_view"],
                names=["driver_*"],
                tags={"team": "risk"},
                purposes=["fraud"],
            )
        ],
    )


def test_the_yaml_list_form_and_its_errors() -> None:
    objs = parse_yaml("roles:\n  - name: a\n    permissions: [{actions: [admin]}]\n")
    assert [o.definition.name for o in objs] == ["a"]
    with pytest.raises(DefinitionError, match=r"roles\[0\].*'action'.*did you mean 'actions'"):
        parse_yaml("roles:\n  - name: a\n    permissions: [{action: [describe]}]\n")
    with pytest.raises(DefinitionError, match=r"role 'a'.*unknown action 'write'"):
        parse_yaml("kind: role\nname: a\npermissions: [{actions: [write]}]\n")
    with pytest.raises(DefinitionError, match=r"permissions\[0\]: expected a mapping"):
        parse_yaml("kind: role\nname: a\npermissions: [describe]\n")


# -- the policy ------------------------------------------------------------------------------


def _access(roles: list[Role], *, enabled: bool = True, revision: int = 1) -> Access:
    box = {"catalog": Catalog.of(roles, revision=revision, project="p")}
    store = SimpleNamespace(
        config=SimpleNamespace(auth=SimpleNamespace(enabled=enabled)),
        catalog=lambda: box["catalog"],
        project="p",
        governance=SimpleNamespace(audit=SimpleNamespace(record=lambda **_: None)),
        box=box,
    )
    return Access(store)  # type: ignore[arg-type]


VIEW = Resource("feature_view", "driver_stats", {"team": "risk"})
READER = Role(
    "reader",
    permissions=[
        Permission(actions=["read_online", "describe"], kinds=["feature_view"], names="driver_*"),
        Permission(actions=["read_pii"], tags={"team": "risk"}, purposes=["fraud"]),
    ],
)


def test_auth_off_allows_everything() -> None:
    access = _access([], enabled=False)
    for action in ACTIONS:
        assert access.allows(Actor("x"), action, VIEW)
    access.check(Actor("x"), "admin", [VIEW])


def test_default_deny_and_what_a_role_grants() -> None:
    access = _access([READER])
    bob = Actor("bob", roles=("reader",))
    assert access.allows(bob, "read_online", VIEW)
    assert access.allows(bob, "describe", VIEW)
    assert not access.allows(bob, "write_online", VIEW)
    assert not access.allows(bob, "read_online", Resource("feature_view", "user_stats"))
    assert not access.allows(bob, "read_online", Resource("feature_service", "driver_svc"))
    assert not access.allows(Actor("nobody"), "describe", VIEW)
    assert not access.allows(Actor("ghost", roles=("undefined",)), "describe", VIEW)


def test_purposes_and_tags() -> None:
    access = _access([READER])
    bob = Actor("bob", roles=("reader",))
    assert not access.allows(bob, "read_pii", VIEW)
    assert access.allows(bob.with_purpose("fraud"), "read_pii", VIEW)
    assert not access.allows(bob.with_purpose("marketing"), "read_pii", VIEW)
    untagged = Resource("feature_view", "driver_stats", {"team": "growth"})
    assert not access.allows(bob.with_purpose("fraud"), "read_pii", untagged)
    with pytest.raises(PermissionDeniedError) as err:
        access.check(bob, "read_pii", [VIEW])
    assert err.value.code == "purpose_not_allowed"
    with pytest.raises(PermissionDeniedError) as err:
        access.check(bob, "apply", [VIEW])
    assert err.value.code == "forbidden" and "bob" in str(err.value)


def test_admin_is_built_in_and_scoped_admin_stays_in_scope() -> None:
    scoped = Role("driver_admin", permissions=[Permission(actions=["admin"], names="driver_*")])
    access = _access([scoped])
    root = Actor("root", roles=("admin",))
    for action in ACTIONS:
        assert access.allows(root, action, VIEW)
    assert access.is_admin(root)
    dana = Actor("dana", roles=("driver_admin",))
    assert access.allows(dana, "write_offline", VIEW)
    assert not access.allows(dana, "write_offline", Resource("feature_view", "user_stats"))
    assert not access.is_admin(dana)


def test_decisions_follow_the_catalog_revision() -> None:
    access = _access([READER])
    bob = Actor("bob", roles=("reader",))
    assert access.allows(bob, "read_online", VIEW)
    access._store.box["catalog"] = Catalog.of([], revision=2, project="p")  # type: ignore[attr-defined]
    assert not access.allows(bob, "read_online", VIEW)


def test_denials_are_recorded() -> None:
    access = _access([READER])
    seen: list[dict] = []
    access._store.governance.audit.record = lambda **kw: seen.append(kw)  # type: ignore[attr-defined]
    with pytest.raises(PermissionDeniedError):
        access.check(Actor("bob", roles=("reader",)), "materialize", [VIEW])
    assert seen and seen[0]["outcome"] == "denied" and seen[0]["action"] == "materialize"
    assert seen[0]["resources"] == ["feature_view:driver_stats"]


names = st.text(alphabet="abcdr_*?", min_size=1, max_size=8)


@given(
    actions=st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=3),
    kinds=st.lists(st.sampled_from([*KINDS, "*"]), min_size=1, max_size=2),
    globs=st.lists(names, min_size=1, max_size=2),
    tags=st.dictionaries(st.sampled_from("tu"), st.sampled_from("xy"), max_size=2),
    purposes=st.none() | st.lists(st.sampled_from(["a", "b"]), min_size=1, max_size=2),
    action=st.sampled_from(ACTIONS),
    kind=st.sampled_from(list(KINDS)),
    name=st.text(alphabet="abcdr_", min_size=1, max_size=6),
    rtags=st.dictionaries(st.sampled_from("tuv"), st.sampled_from("xy"), max_size=3),
    purpose=st.none() | st.sampled_from(["a", "b", "c"]),
)
def test_a_permission_grants_exactly_by_the_rule(
    actions, kinds, globs, tags, purposes, action, kind, name, rtags, purpose
) -> None:
    p = Permission(actions=actions, kinds=kinds, names=globs, tags=tags, purposes=purposes)
    expected = (
        (action in actions or "admin" in actions)
        and ("*" in kinds or kind in kinds)
        and any(fnmatchcase(name, g) for g in globs)
        and all(rtags.get(k) == v for k, v in tags.items())
        and (purposes is None or purpose in purposes)
    )
    resource = Resource(kind, name, rtags)
    assert grants(p, action, resource, purpose) == expected
    access = _access([Role("r", permissions=[p])])
    actor = Actor("x", roles=("r",), purpose=purpose)
    assert access.allows(actor, action, resource) == expected
    assert access.allows(actor, action, resource) == expected  # cached: same answer


def test_a_repo_cannot_define_admin(tmp_path: Path) -> None:
    from parity.errors import ValidationError
    from parity.registry.validation import check_roles

    assert check_roles([Role("admin", permissions=[{"actions": ["describe"]}])])
    assert not check_roles([READER])
    assert issubclass(ValidationError, DefinitionError)
