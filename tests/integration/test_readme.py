"""README.md runs as written: its fenced blocks, in document order, as a tutorial would (and
so does the README `parity init` writes into the scaffold).

Blocks are found by their language: ``bash``/``sh``/``shell`` (every line runs in bash with
``set -euo pipefail`` and the venv's ``bin`` first on ``PATH``; a ``cd`` carries over to later
blocks), ``console`` (the ``$ `` lines run the same way), ``python`` (run in one Python session
for the whole document, as a reader keeps one open: names a block defines are there for the
next; top-level ``await`` works; the working folder is the shell's) and ``yaml`` (parsed; a
block starting ``# parity.yaml`` is a whole config and is loaded by Parity's config loader;
a block whose documents hold only config keys is a fragment: each document is merged into
the repo's ``parity.yaml`` and loaded; a block starting ``# feature_store.yaml``, the
incumbent's config, is only parsed; any other block is definitions, built by the YAML form's
parser). Other fences (the Layout tree, plain text) are not run.

The tutorial starts in an empty temporary folder; the README's first runnable block is
``parity init`` (the test checks it), so every later block runs in that scaffold.

``parity serve`` lines are not run by the shell: the test starts the server itself, on a free
loopback port, with the line's other options, waits until it is ready, and rewrites
``localhost:PORT`` in later lines to the free port; servers are stopped at the end. ``curl``
commands get ``--fail-with-body``, so an HTTP error fails the block.

An HTML comment just before a block steers it:

- ``<!-- readme-test: skip — reason -->``: not run; a skip without a reason fails the test;
- ``<!-- readme-test: write PATH -->``: the block is a file of the repo, written to PATH (relative
  to the working folder) instead of being run; later blocks use it (``parity apply``).
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.integration.test_server import Server, wait_for

from parity.config import RepoConfig
from parity.repo.yaml_form import parse_yaml

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
LANGUAGES = {
    "bash": "shell",
    "sh": "shell",
    "shell": "shell",
    "console": "console",
    "python": "python",
    "py": "python",
    "yaml": "yaml",
    "yml": "yaml",
}
DIRECTIVE = re.compile(r"^<!--\s*readme-test:\s*(\w+)\s*(.*?)\s*-->$")
FENCE = re.compile(r"^(`{3,})\s*([\w+-]*)\s*$")
SERVE = re.compile(r"^\s*parity\s+serve\b")
LOCAL_PORT = re.compile(r"\b(?:localhost|127\.0\.0\.1):(\d+)")
CONFIG_KEYS = set(RepoConfig.model_fields) - {"project", "repo_path"}


@dataclass(frozen=True)
class Block:
    """A fenced block of the README: where it starts, its language and what steers it."""

    line: int
    language: str  # the fence's word, e.g. "bash"
    kind: str | None  # shell, console, python, yaml; None = not run
    text: str
    section: str
    directive: tuple[str, str] | None  # (name, argument), e.g. ("skip", "reason")

    @property
    def where(self) -> str:
        return f"README.md line {self.line} ({self.section})"


def readme_blocks(text: str) -> list[Block]:
    """Every fenced block, in document order, with the directive comment just before it."""
    found: list[Block] = []
    lines = text.splitlines()
    section = "top"
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        fence = FENCE.match(line)
        if not fence:
            i += 1
            continue
        end = next(
            (j for j in range(i + 1, len(lines)) if lines[j].strip() == fence.group(1)), None
        )
        assert end is not None, f"README.md line {i + 1}: a fence that is never closed"
        directive = None
        before = i - 1
        while before >= 0 and not lines[before].strip():
            before -= 1
        if before >= 0 and (m := DIRECTIVE.match(lines[before].strip())):
            directive = (m.group(1), m.group(2).lstrip("\u2014\u2013- ").strip())
        lang = fence.group(2).lower()
        body = "\n".join(lines[i + 1 : end]) + "\n"
        found.append(Block(i + 1, lang, LANGUAGES.get(lang), body, section, directive))
        i = end + 1
    return found


def shell_commands(block: Block) -> list[str]:
    """The block's commands: logical lines (``\\`` continues one), ``$ `` lines of a console."""
    raw = block.text.splitlines()
    if block.kind == "console":
        raw = [line[2:] for line in raw if line.startswith("$ ")]
    commands, current = [], ""
    for line in raw:
        current += line
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        if current.strip():
            commands.append(current)
        current = ""
    if current.strip():
        commands.append(current)
    return commands


class Tutorial:
    """The state a reader builds while following the README: a folder, a shell's working
    directory, one Python session, and the servers started."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.cwd = home
        self.namespace: dict[str, Any] = {"__name__": "readme"}
        self.servers: list[Server] = []
        self.ports: dict[str, str] = {}  # README port -> the free port serving it
        self.env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.env.pop("VIRTUAL_ENV", None)

    # -- shell -------------------------------------------------------------------------------
    def shell(self, block: Block) -> None:
        segment: list[str] = []
        for command in shell_commands(block):
            if SERVE.match(command):
                self._run_shell(block, segment)
                segment = []
                self._serve(block, command)
            else:
                segment.append(self._rewrite(command))
        self._run_shell(block, segment)

    def _rewrite(self, command: str) -> str:
        command = LOCAL_PORT.sub(
            lambda m: f"127.0.0.1:{self.ports[m.group(1)]}" if m.group(1) in self.ports else m[0],
            command,
        )
        return re.sub(r"(^|[;&|]\s*)curl\b", r"\1curl --fail-with-body", command)

    def _run_shell(self, block: Block, commands: list[str]) -> None:
        if not commands:
            return
        state = self.home / ".readme-cwd"
        script = "set -euo pipefail\n" + "\n".join(commands) + f'\npwd > "{state}"\n'
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, (
            f"{block.where}: exited {done.returncode}\n$ " + "\n$ ".join(commands)
            + f"\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )  # fmt: skip
        self.cwd = Path(state.read_text().strip())

    def _serve(self, block: Block, command: str) -> None:
        words = shlex.split(command.split("#", 1)[0].replace("&", " "))[2:]
        readme_port, args, i = "6566", [], 0
        while i < len(words):
            if words[i] in ("--port", "--host", "--repo"):
                if words[i] == "--port":
                    readme_port = words[i + 1]
                i += 2
                continue
            args.append(words[i])
            i += 1
        server = Server(self.cwd, *args, env=self.env)
        self.servers.append(server)
        wait_for(
            lambda: server.client.get("/ready").status_code == 200,
            f"{block.where}: parity serve is ready",
            server.output,
        )
        self.ports[readme_port] = str(server.port)

    # -- python ------------------------------------------------------------------------------
    def python(self, block: Block, index: int) -> None:
        # a real file, so tracebacks and inspect.getsource see the code
        path = self.home / ".readme-python" / f"block_{index:02d}_line_{block.line}.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(block.text)
        code = compile(block.text, str(path), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        before = Path.cwd()
        os.chdir(self.cwd)
        try:
            result = eval(code, self.namespace)
            if inspect.iscoroutine(result):
                asyncio.run(result)
        except Exception as exc:
            raise AssertionError(f"{block.where}: the Python block raised {exc!r}") from exc
        finally:
            os.chdir(before)

    # -- yaml --------------------------------------------------------------------------------
    def yaml(self, block: Block, index: int) -> None:
        docs = list(yaml.safe_load_all(block.text))
        assert docs and all(d is not None for d in docs), f"{block.where}: an empty document"
        scratch = self.home / ".readme-yaml" / f"block_{index:02d}"
        first = block.text.lstrip().split("\n", 1)[0]
        if first.startswith("# feature_store.yaml"):
            assert all(isinstance(d, dict) and "project" in d for d in docs), block.where
            return  # the incumbent's config: YAML with a project, nothing more to load here
        if first.startswith("# parity.yaml"):
            assert len(docs) == 1, f"{block.where}: a parity.yaml is one document"
            self._load_config(block, docs[0], scratch)
        elif all(isinstance(d, dict) and set(d) <= CONFIG_KEYS for d in docs):
            base = yaml.safe_load((self.cwd / "parity.yaml").read_text())
            for n, doc in enumerate(docs):
                self._load_config(block, {**base, **doc}, scratch / str(n))
        else:
            parse_yaml(block.text, display=block.where)

    def _load_config(self, block: Block, data: dict[str, Any], folder: Path) -> None:
        folder.mkdir(parents=True)
        (folder / "parity.yaml").write_text(yaml.safe_dump(data))
        try:
            RepoConfig.load(folder)
        except Exception as exc:
            raise AssertionError(f"{block.where}: not a valid parity.yaml: {exc}") from exc

    # -- files -------------------------------------------------------------------------------
    def write(self, block: Block, target: str) -> None:
        assert target, f"{block.where}: write needs a path"
        path = self.cwd / target
        assert not path.exists(), f"{block.where}: {path} exists already"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block.text)

    def close(self) -> None:
        codes = [server.stop() for server in self.servers]
        assert codes == [0] * len(codes), f"a README server exited with {codes}"


README_STREAM_KEYS = "parity_demo:*"
"""The README's stream section writes Redis keys under this prefix (db 0): emptied before and
after, so every run of the tutorial starts from a stream with no group and no messages."""


def _forget_readme_streams() -> None:
    import redis

    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        keys = list(client.scan_iter(match=README_STREAM_KEYS))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def tutorial(tmp_path: Path) -> Iterator[Tutorial]:
    folder = tmp_path / "tutorial"
    folder.mkdir()
    _forget_readme_streams()
    t = Tutorial(folder)
    try:
        yield t
    finally:
        t.close()
        _forget_readme_streams()


@pytest.mark.slow
def test_every_readme_block_runs_in_order_on_a_fresh_scaffold(tutorial: Tutorial):
    blocks = readme_blocks(README.read_text())
    runnable = [b for b in blocks if b.kind and (b.directive or ("",))[0] != "skip"]
    assert runnable, "the README has no runnable block"
    first = runnable[0]
    assert first.kind == "shell" and "parity init" in first.text, (
        f"{first.where}: the first runnable block must make the tutorial's repo (parity init)"
    )
    run_blocks(tutorial, blocks)


@pytest.mark.slow
def test_the_scaffolds_own_readme_runs_as_written_in_it(tutorial: Tutorial):
    done = subprocess.run(
        [str(BIN / "parity"), "init", "fleet"], cwd=tutorial.home, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    tutorial.cwd = tutorial.home / "fleet"
    blocks = readme_blocks((tutorial.cwd / "README.md").read_text())
    assert [b.kind for b in blocks] == ["shell", "python"], blocks
    run_blocks(tutorial, blocks)
    assert (tutorial.cwd / "training.parquet").is_file()
    statuses = tutorial.namespace["online"].statuses  # what the README says its read shows
    assert statuses["conv_rate"] == statuses["driver_rating"] == ["present", "present", "missing"]


def run_blocks(tutorial: Tutorial, blocks: list[Block]) -> None:
    """Run ``blocks`` in order, as their directives say."""
    for index, block in enumerate(blocks):
        name, argument = block.directive or ("", "")
        if block.kind is None:
            assert not name, f"{block.where}: a readme-test directive on a block that is not run"
            continue
        if name == "skip":
            continue
        if name == "write":
            tutorial.write(block, argument)
            continue
        assert not name, f"{block.where}: unknown readme-test directive {name!r}"
        if block.kind in ("shell", "console"):
            tutorial.shell(block)
        elif block.kind == "python":
            tutorial.python(block, index)
        else:
            tutorial.yaml(block, index)


def test_every_skip_says_why_and_every_fence_has_a_language():
    for block in readme_blocks(README.read_text()):
        if block.directive and block.directive[0] == "skip":
            assert len(block.directive[1]) >= 10, f"{block.where}: a skip without a reason"
        assert block.kind or block.language in ("", "text"), (
            f"{block.where}: fence language {block.language!r} is neither run nor plain text"
        )


PATH_WORD = re.compile(r"[\w./]+(?:\.py|/)")


def layout_paths(text: str) -> list[Path]:
    """The paths the Layout section's tree names.

    A line starts with paths (``definitions/``, ``store.py``, ``server/ cli/``): indented lines
    inside ``src/parity/``, the others from the repo's root, their later leading paths inside
    the first (``tests/  unit/ contract/``). Further on a line, and on the more deeply indented
    lines continuing it, a word naming a module or folder (``entity.py``, ``duckdb/``) must be
    in one of the line's leading folders.
    """
    section = text.split("\n## Layout", 1)[1].split("\n## ", 1)[0]
    tree = section.split("```", 2)[1]
    package = ROOT / "src" / "parity"
    paths: list[Path] = []
    folders: list[Path] = []
    for line in tree.splitlines():
        words = [w.strip("(),;:`") for w in line.split()]
        if not words:
            continue
        lead = []
        for w in words if not line.startswith("   ") else []:
            if not PATH_WORD.fullmatch(w):
                break
            lead.append(w)
        if line.startswith("   "):  # continues the line before
            leading = folders
        else:
            assert lead, f"a Layout line that does not start with a path: {line!r}"
            if line.startswith(" "):
                leading = [package / w for w in lead]
            else:
                leading = [ROOT / lead[0], *(ROOT / lead[0] / w for w in lead[1:])]
            paths += leading
            folders = [p for p in leading if p.is_dir()] or leading
        for w in words[len(lead) :]:
            if PATH_WORD.fullmatch(w):
                found = [f / w for f in folders if (f / w).exists()]
                paths.append(found[0] if found else folders[0] / w)
    return paths


def test_the_layout_section_matches_the_tree():
    text = README.read_text()
    named = layout_paths(text)
    missing = [str(p.relative_to(ROOT)) for p in named if not p.exists()]
    assert not missing, f"the Layout section names paths that do not exist: {missing}"
    package = ROOT / "src" / "parity"
    expected = [p for p in package.iterdir() if (p / "__init__.py").is_file()]
    expected += [p for p in package.glob("*.py")]
    unnamed = [p.name for p in expected if p.resolve() not in {q.resolve() for q in named}]
    assert not unnamed, f"the Layout section leaves out {sorted(unnamed)}"


def test_the_readme_links_only_inside_the_repo():
    text = README.read_text()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://", "#")):
            continue
        path = (ROOT / target.split("#")[0]).resolve()
        assert ROOT in path.parents or path == ROOT, f"a link outside the repo: {target}"
        assert path.exists(), f"a link to a path that does not exist: {target}"


def test_a_failing_command_or_block_fails_the_tutorial(tutorial: Tutorial):
    text = """## Try
```bash
cd . && false
```

```python
raise ValueError("broken")
```

```yaml
# parity.yaml
project: demo
registry: { path: x.db, colour: blue }
```

<!-- readme-test: skip -->
```bash
true
```
"""
    shell, python, config, skipped = readme_blocks(text)
    with pytest.raises(AssertionError, match=r"README.md line 2 \(Try\): exited 1"):
        tutorial.shell(shell)
    with pytest.raises(AssertionError, match="raised ValueError"):
        tutorial.python(python, 1)
    with pytest.raises(AssertionError, match=r"not a valid parity\.yaml"):
        tutorial.yaml(config, 2)
    assert skipped.directive == ("skip", "")
