"""``parity token create | list | revoke`` and the CLI acting as ``PARITY_TOKEN``: the token
alone on the last line, listings without secrets, exit codes and errors one can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_utils import parity, table_rows
from parity.governance import tokens
from repo_utils import write_repo

ROLES = """
kind: role
name: reader
permissions:
  - {actions: [describe], kinds: [role]}
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = write_repo(tmp_path / "repo", {"roles.yaml": ROLES})
    with (root / "parity.yaml").open("a") as f:
        f.write("auth: {enabled: true}\n")
    monkeypatch.delenv("PARITY_TOKEN", raising=False)
    tokens.forget_cached()
    return root


def test_bootstrap_then_manage_tokens_as_parity_token(repo: Path, monkeypatch) -> None:
    denied = parity("apply", "--repo", repo, code=1)
    assert "may not apply" in denied.stderr and "PARITY_TOKEN" in denied.stderr
    made = parity("token", "create", "--principal", "root", "--role", "admin", "--repo", repo)
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("parity_") and made.stdout.strip() == token  # alone on stdout
    secret = token.split(".")[1]
    again = parity("token", "create", "-p", "eve", "--role", "admin", "--repo", repo, code=1)
    assert "may not admin" in again.stderr

    monkeypatch.setenv("PARITY_TOKEN", token)
    parity("apply", "--repo", repo)
    reader = parity(
        "token", "create", "-p", "bob", "--role", "reader", "--expires", "30d",
        "-d", "nightly job", "--repo", repo,
    )  # fmt: skip
    listed = parity("token", "list", "--repo", repo)
    rows = {r[1]: r for r in table_rows(listed.stdout)}
    assert set(rows) == {"root", "bob"}
    assert rows["bob"][2] == "reader" and rows["bob"][3] == "active"
    assert rows["bob"][-1] == "nightly job" and rows["root"][6].endswith(":bootstrap")
    assert secret not in listed.stdout and reader.stdout.strip().split(".")[1] not in listed.stdout

    bob_id = rows["bob"][0]
    parity("token", "revoke", bob_id, "--repo", repo)
    assert "bob" not in parity("token", "list", "--repo", repo).stdout
    assert "revoked" in parity("token", "list", "--all", "--repo", repo).stdout
    missing = parity("token", "revoke", "ffffffffffffffff", "--repo", repo, code=1)
    assert "no token with id 'ffffffffffffffff'" in missing.stderr
    bad_role = parity("token", "create", "-p", "x", "--role", "nope", "--repo", repo, code=1)
    assert "'nope' is not defined" in bad_role.stderr
    parity("token", "create", "-p", "x", "--repo", repo, code=2)  # --role is required


def test_the_cli_acts_as_parity_token(repo: Path, monkeypatch) -> None:
    token = parity(
        "token", "create", "-p", "root", "--role", "admin", "--repo", repo
    ).stdout.split()[-1]
    monkeypatch.setenv("PARITY_TOKEN", token)
    parity("apply", "--repo", repo)
    reader = parity("token", "create", "-p", "bob", "--role", "reader", "--repo", repo)
    monkeypatch.setenv("PARITY_TOKEN", reader.stdout.split()[-1])
    shown = parity("list", "role", "--repo", repo)
    assert "reader" in shown.stdout and "describe on role" in shown.stdout
    assert "may not admin" in parity("token", "list", "--repo", repo, code=1).stderr
    monkeypatch.setenv("PARITY_TOKEN", "not-a-token")
    bad = parity("list", "--repo", repo, code=1)
    assert "invalid token" in bad.stderr and "not-a-token" not in bad.stderr
