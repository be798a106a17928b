"""The sans-IO core imports no I/O framework.

``wecom_actors/protocol/``, ``wecom_actors/crypto.py``, ``wecom_actors/render.py`` and
``wecom_actors/longconn/correlation.py`` must never
import trio, trio_websocket, httpx or hypercorn, neither directly nor through another
wecom_actors module. Two independent checks:

1. a static walk of every ``import``/``from`` statement with :mod:`ast` (relative imports resolved,
   wecom_actors modules followed transitively, statements under ``if TYPE_CHECKING:`` and inside
   functions included on purpose: the core has no reason to mention these packages at all);
2. a subprocess that really imports the modules and inspects ``sys.modules``.

Both checkers are also run against a small synthetic package that does break the rule, so the
tests are known to be able to fail.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import wecom_actors

FORBIDDEN = frozenset({"trio", "trio_websocket", "httpx", "hypercorn"})
PACKAGE = "wecom_actors"
PACKAGE_DIR = Path(wecom_actors.__file__).resolve().parent

# The sans-IO modules, as dotted names.
SANS_IO = sorted(
    [f"{PACKAGE}.protocol"]
    + [
        f"{PACKAGE}.protocol.{p.stem}"
        for p in (PACKAGE_DIR / "protocol").glob("*.py")
        if p.stem != "__init__"
    ]
    + [f"{PACKAGE}.crypto", f"{PACKAGE}.render", f"{PACKAGE}.longconn.correlation"]
)


# --- the static walker ----------------------------------------------------------------------------


@dataclass
class Walk:
    """Result of walking the imports of some root modules inside one package."""

    visited: set[str] = field(default_factory=set)
    # forbidden top-level name -> the chain of modules through which it is reached
    offences: dict[str, list[str]] = field(default_factory=dict)


def module_file(package_dir: Path, package: str, dotted: str) -> Path | None:
    """The source file of ``dotted`` inside ``package`` (a module or a subpackage), or None."""
    if dotted != package and not dotted.startswith(package + "."):
        return None
    rel = dotted.split(".")[1:]
    base = package_dir.joinpath(*rel)
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _resolve_relative(current: str, is_package: bool, level: int, module: str | None) -> str:
    """The absolute name of ``from <level dots><module> import ...`` written in ``current``."""
    parts = current.split(".")
    if not is_package:
        parts = parts[:-1]  # a plain module's "." is its package
    if level > 1:
        if level - 1 > len(parts) - 1:
            raise ImportError(f"relative import beyond top-level package in {current}")
        parts = parts[: len(parts) - (level - 1)]
    return ".".join(parts + ([module] if module else []))


def imported_refs(source: str, current: str, is_package: bool) -> list[tuple[str, tuple[str, ...]]]:
    """Every import in ``source`` as ``(absolute module, names imported from it)``.

    ``import a.b`` gives ``("a.b", ())``; ``from ..x import y, z`` written in ``p.q.m`` gives
    ``("p.x", ("y", "z"))``. ``importlib.import_module("x")`` / ``__import__("x")`` with a literal
    argument count as ``import x``.
    """
    refs: list[tuple[str, tuple[str, ...]]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            refs.extend((alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _resolve_relative(current, is_package, node.level, node.module)
            else:
                base = node.module or ""
            refs.append((base, tuple(a.name for a in node.names if a.name != "*")))
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (
                    isinstance(node.func, ast.Name)
                    and node.func.id in {"__import__", "import_module"}
                )
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
        ):
            refs.append((node.args[0].value, ()))
    return refs


def walk_imports(roots: list[str], package: str, package_dir: Path) -> Walk:
    """Follow imports from ``roots`` through every module of ``package``.

    Importing ``a.b.c`` also runs the ``__init__`` of ``a.b`` (and ``a.b.c``'s own when it is a
    package), so intermediate subpackage ``__init__`` files are walked too. The one exception is
    the top-level ``package/__init__.py``: it is the public facade that re-exports the whole
    runtime (trio included) by design, so it is not walked; instead, *depending* on it
    (``import wecom_actors``, or ``from wecom_actors import SomeName`` where the name is not a
    submodule) is itself an offence, reported under the package's name.
    """
    result = Walk()
    todo: list[tuple[str, list[str]]] = [(r, [r]) for r in roots]

    def exists(dotted: str) -> bool:
        return module_file(package_dir, package, dotted) is not None

    while todo:
        name, chain = todo.pop()
        if name in result.visited:
            continue
        result.visited.add(name)
        path = module_file(package_dir, package, name)
        if path is None:
            raise AssertionError(f"cannot find the source of {name} (via {' -> '.join(chain)})")
        refs = imported_refs(path.read_text("utf-8"), name, path.name == "__init__.py")
        for module, fromlist in refs:
            top = module.split(".")[0]
            if top in FORBIDDEN:
                result.offences.setdefault(module, [*chain, module])
                continue
            if top != package:
                continue
            parts = module.split(".")
            targets = [".".join(parts[:i]) for i in range(2, len(parts) + 1)]
            for item in fromlist:
                if exists(f"{module}.{item}"):
                    targets.append(f"{module}.{item}")
                elif module == package:
                    result.offences.setdefault(package, [*chain, f"{package}.{item} (facade)"])
            if module == package and not fromlist:
                result.offences.setdefault(package, [*chain, f"{package} (facade)"])
            todo.extend((t, [*chain, t]) for t in targets if exists(t))
    return result


def test_sans_io_modules_exist() -> None:
    assert f"{PACKAGE}.protocol.frames" in SANS_IO
    for name in SANS_IO:
        assert module_file(PACKAGE_DIR, PACKAGE, name) is not None, name


@pytest.mark.parametrize("root", SANS_IO)
def test_static_walk_finds_no_io_framework(root: str) -> None:
    walk = walk_imports([root], PACKAGE, PACKAGE_DIR)
    assert root in walk.visited
    assert not walk.offences, "\n".join(" -> ".join(c) for c in walk.offences.values())
    # nothing the sans-IO core reaches may be the package facade
    assert PACKAGE not in walk.visited


def test_static_walk_follows_the_real_dependency_graph() -> None:
    """A sanity check that the walker really resolves relative imports transitively."""
    walk = walk_imports([f"{PACKAGE}.render"], PACKAGE, PACKAGE_DIR)
    # render -> .protocol.replies (and .protocol, the subpackage whose __init__ runs first)
    # -> ..errors via frames/inbound
    assert {
        f"{PACKAGE}.protocol",
        f"{PACKAGE}.protocol.replies",
        f"{PACKAGE}.errors",
    } <= walk.visited
    assert f"{PACKAGE}.protocol.frames" in walk.visited  # via protocol/__init__.py


# --- the subprocess check -------------------------------------------------------------------------

# ``import wecom_actors.protocol`` would first execute ``wecom_actors/__init__.py``, the public
# facade, which imports the whole runtime (bot, longconn, ... and so trio, trio_websocket, httpx)
# and would make this check meaningless. So the child registers a stub module named
# ``wecom_actors`` whose ``__path__`` points at the package directory, built with importlib.util
# from a spec that has no loader: the real ``__init__.py`` never runs, while the normal import
# system still finds the submodules (protocol/, crypto.py, render.py) through ``__path__`` and
# executes them, and their own relative imports, for real.
_CHILD = textwrap.dedent(
    """
    import importlib, importlib.util, json, sys
    package, package_dir, modules, forbidden = sys.argv[1], sys.argv[2], sys.argv[3:-1], sys.argv[-1]
    spec = importlib.util.spec_from_loader(package, loader=None, is_package=True)
    stub = importlib.util.module_from_spec(spec)
    stub.__path__ = [package_dir]
    sys.modules[package] = stub
    for name in modules:
        importlib.import_module(name)
    assert sys.modules[package] is stub, "the package __init__ ran after all"
    leaked = sorted(set(forbidden.split(",")) & {m.split(".")[0] for m in sys.modules})
    print(json.dumps(leaked))
    sys.exit(1 if leaked else 0)
    """
)


def run_child(
    package: str, package_dir: Path, modules: list[str]
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONSTARTUP", "PYTHONPATH"}}
    return subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            _CHILD,
            package,
            str(package_dir),
            *modules,
            ",".join(sorted(FORBIDDEN)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_subprocess_import_loads_no_io_framework() -> None:
    proc = run_child(PACKAGE, PACKAGE_DIR, SANS_IO)
    assert proc.returncode == 0, f"stdout={proc.stdout!r} stderr={proc.stderr!r}"
    assert proc.stdout.strip() == "[]"


# --- the checks can fail -------------------------------------------------------------------------


@pytest.fixture
def bad_package(tmp_path: Path) -> tuple[str, Path]:
    """A package whose core module reaches trio only indirectly, through a relative import."""
    pkg = tmp_path / "badpkg"
    (pkg / "core").mkdir(parents=True)
    (pkg / "__init__.py").write_text("import httpx  # the facade may; it is not walked\n")
    (pkg / "core" / "__init__.py").write_text("from .codec import encode\n")
    (pkg / "core" / "codec.py").write_text(
        "from ..helpers import clock\n\ndef encode(x):\n    return x\n"
    )
    (pkg / "helpers.py").write_text("from . import timing as clock\n")
    (pkg / "timing.py").write_text("import trio.lowlevel\n")
    (pkg / "infunc.py").write_text("def f():\n    from httpx import Client\n    return Client\n")
    (pkg / "facade_user.py").write_text("from badpkg import helpers2, Something\n")
    (pkg / "clean.py").write_text("import json\nfrom .core import codec\n")
    (pkg / "lazy.py").write_text("import importlib\nM = importlib.import_module('hypercorn')\n")
    (pkg / "typed.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from trio_websocket import WebSocketConnection\n"
    )
    (pkg / "fine.py").write_text("import msgspec\nfrom . import helpers2\n")
    (pkg / "helpers2.py").write_text("import hashlib\n")
    return "badpkg", pkg


@pytest.mark.parametrize(
    ("root", "reached"),
    [
        ("badpkg.core.codec", "trio.lowlevel"),  # codec -> ..helpers -> .timing -> trio
        ("badpkg.core", "trio.lowlevel"),
        ("badpkg.clean", "trio.lowlevel"),  # clean -> .core (package __init__) -> ...
        ("badpkg.lazy", "hypercorn"),
        ("badpkg.typed", "trio_websocket"),
        ("badpkg.infunc", "httpx"),
        ("badpkg.facade_user", "badpkg"),
    ],
)
def test_static_walk_catches_indirect_imports(
    bad_package: tuple[str, Path], root: str, reached: str
) -> None:
    name, path = bad_package
    walk = walk_imports([root], name, path)
    assert reached in walk.offences
    assert walk.offences[reached][0] == root


def test_static_walk_passes_a_clean_module(bad_package: tuple[str, Path]) -> None:
    name, path = bad_package
    walk = walk_imports([f"{name}.fine"], name, path)
    assert not walk.offences
    assert walk.visited == {f"{name}.fine", f"{name}.helpers2"}
    # `from badpkg import helpers2` names a submodule, not the facade
    walk = walk_imports([f"{name}.facade_user"], name, path)
    assert f"{name}.helpers2" in walk.visited
    assert walk.offences[name][-1] == f"{name}.Something (facade)"


def test_relative_import_resolution() -> None:
    assert _resolve_relative("p.a.b", False, 1, "c") == "p.a.c"
    assert _resolve_relative("p.a.b", False, 2, "c") == "p.c"
    assert _resolve_relative("p.a", True, 1, "c") == "p.a.c"
    assert _resolve_relative("p.a", True, 2, None) == "p"
    assert _resolve_relative("p.a.b", False, 1, None) == "p.a"
    with pytest.raises(ImportError):
        _resolve_relative("p.a", False, 3, "x")


@pytest.mark.parametrize(
    ("modules", "leaked"),
    [
        (["badpkg.core.codec"], ["trio"]),
        (["badpkg.lazy"], ["hypercorn"]),
        (["badpkg.fine", "badpkg.clean"], ["trio"]),
    ],
)
def test_subprocess_check_catches_a_leak(
    bad_package: tuple[str, Path], modules: list[str], leaked: list[str]
) -> None:
    name, path = bad_package
    proc = run_child(name, path, modules)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.strip() == str(leaked).replace("'", '"')


def test_subprocess_check_fails_when_the_facade_is_needed(bad_package: tuple[str, Path]) -> None:
    name, path = bad_package
    proc = run_child(name, path, [f"{name}.facade_user"])
    assert proc.returncode != 0
    assert "Something" in proc.stderr


def test_subprocess_check_skips_the_facade(bad_package: tuple[str, Path]) -> None:
    """badpkg/__init__.py imports httpx; the stub keeps it from running."""
    name, path = bad_package
    proc = run_child(name, path, [f"{name}.fine"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
