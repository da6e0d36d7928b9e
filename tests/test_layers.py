"""The layers of ``src/tocsin`` only look down, and no module imports in a cycle.

Layers, lowest first:

0. core: ``tocsin`` and its private modules ``tocsin._*`` (standard library only);
1. catalog: ``tocsin.signals`` (declarations);
2. emitters and glue: ``tocsin.apps``, ``tocsin.transaction``, ``tocsin.auth``,
   ``tocsin.testing`` and its ``tocsin.pytest_plugin``, ``tocsin.integrations``;
3. delivery and insight: ``tocsin.durable``, the ``tocsin`` command
   (``tocsin.cli``, ``tocsin.__main__``), the debug timeline (``tocsin.debug``),
   and ``tocsin.integrations.celery``: it lives beside the emitters, but it is
   a transport of durable receivers and builds on ``tocsin.durable``.

The imports are read from the source (``ast``), wherever they are, inside
functions too, so that a lazy upward import is caught as well; only imports
under ``if TYPE_CHECKING:`` are left out, since they never run. Besides
``import`` statements, ``__import__("...")`` and
``importlib.import_module("...")`` with a literal name count. Then every
module is imported first, alone, in a fresh interpreter.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
CORE, CATALOG, GLUE, DELIVERY = 0, 1, 2, 3
LAYER_NAMES = {
    CORE: "core",
    CATALOG: "catalog",
    GLUE: "emitters and glue",
    DELIVERY: "delivery and insight",
}
DELIVERY_PACKAGES = (
    "tocsin.durable",
    "tocsin.cli",
    "tocsin.__main__",
    "tocsin.debug",
    # A transport of durable receivers, although it lives under integrations.
    "tocsin.integrations.celery",
)
GLUE_PACKAGES = (
    "tocsin.apps",
    "tocsin.transaction",
    "tocsin.auth",
    "tocsin.testing",
    "tocsin.pytest_plugin",
    "tocsin.integrations",
)


def module_files() -> dict[str, Path]:
    modules = {}
    for path in sorted((SRC / "tocsin").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


MODULES = module_files()


def layer(module: str) -> int:
    """The layer of a tocsin module; an unknown module fails the test."""
    if any(module == p or module.startswith(p + ".") for p in DELIVERY_PACKAGES):
        return DELIVERY
    if module == "tocsin" or (module.startswith("tocsin._") and module.count(".") == 1):
        return CORE
    if module == "tocsin.signals":
        return CATALOG
    if any(module == p or module.startswith(p + ".") for p in GLUE_PACKAGES):
        return GLUE
    raise AssertionError(
        f"{module} is in no layer: add it to tests/test_layers.py (and the README's "
        "layout section)."
    )


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _dynamic_import(node: ast.Call) -> str | None:
    """The literal name given to ``__import__`` or ``import_module``."""
    func = node.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    if name not in {"__import__", "import_module"} or not node.args:
        return None
    first = node.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    return None


def _walk_running_code(node: ast.AST) -> Iterator[ast.AST]:
    """Every node, except the bodies of ``if TYPE_CHECKING:`` blocks."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield other
                yield from _walk_running_code(other)
            continue
        yield child
        yield from _walk_running_code(child)


def _resolve(module: str, path: Path, level: int, name: str | None) -> str:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(level - 1):
        package = package.rpartition(".")[0]
    if level == 0:
        return name or ""
    return f"{package}.{name}" if name else package


def _tocsin_module(name: str) -> str | None:
    """The tocsin module that importing ``name`` runs, if any: the longest
    known module that ``name`` starts with (an imported attribute is not a
    module)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, source: str | None = None) -> dict[str, int]:
    """The tocsin modules that ``module`` imports when it runs, with a line
    of each import; ``source`` replaces the module's file."""
    path = MODULES[module]
    if source is None:
        source = path.read_text()
    found: dict[str, int] = {}

    def add(name: str, line: int) -> None:
        target = _tocsin_module(name)
        if target is not None and target != module:
            found.setdefault(target, line)

    for node in _walk_running_code(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, path, node.level, node.module)
            for alias in node.names:
                add(f"{base}.{alias.name}", node.lineno)
        elif isinstance(node, ast.Call):
            name = _dynamic_import(node)
            if name is not None:
                add(name, node.lineno)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One import cycle of ``graph``, as ``[a, b, ..., a]``, or ``None``."""
    done: set[str] = set()
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in stack:
            return [*stack[stack.index(node) :], node]
        if node in done:
            return None
        stack.append(node)
        for target in sorted(graph.get(node, {})):
            cycle = visit(target)
            if cycle:
                return cycle
        stack.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start)
        if cycle:
            return cycle
    return None


# -- the checks on the source ---------------------------------------------------------


def test_every_module_is_in_a_layer() -> None:
    assert {module: LAYER_NAMES[layer(module)] for module in MODULES}


def test_no_module_imports_one_from_a_higher_layer() -> None:
    upward = [
        f"{MODULES[module].relative_to(SRC)}:{line}: {module} ({LAYER_NAMES[layer(module)]}) "
        f"imports {target} ({LAYER_NAMES[layer(target)]})"
        for module, targets in GRAPH.items()
        for target, line in targets.items()
        if layer(target) > layer(module)
    ]
    assert upward == []


def test_no_import_cycle_among_tocsin_modules() -> None:
    assert find_cycle(GRAPH) is None


def test_signals_imports_nothing_of_tocsin_apps_at_all() -> None:
    assert not [m for m in GRAPH["tocsin.signals"] if m.startswith("tocsin.apps")]


# -- the checker itself: each rule fails when broken ------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from .apps import Registry", {"tocsin.apps"}),
        ("from . import apps", {"tocsin.apps"}),
        ("import tocsin.apps._registry", {"tocsin.apps._registry"}),
        ("def f():\n    from .apps import apps", {"tocsin.apps"}),
        ("def f():\n    __import__('tocsin.transaction')", {"tocsin.transaction"}),
        (
            "import importlib\nimportlib.import_module('tocsin.auth')",
            {"tocsin.auth"},
        ),
        ("from ._signal import Signal", {"tocsin._signal"}),
        ("from . import _refs", {"tocsin._refs"}),
        ("if TYPE_CHECKING:\n    from .apps import Registry", set()),
        ("if typing.TYPE_CHECKING:\n    import tocsin.apps", set()),
        (
            "if TYPE_CHECKING:\n    pass\nelse:\n    from .apps import apps",
            {"tocsin.apps"},
        ),
        ("import json\nfrom collections import abc", set()),
    ],
)
def test_the_checker_reads_every_kind_of_import(
    source: str, expected: set[str]
) -> None:
    assert set(imports_of("tocsin.signals", source)) == expected


def test_the_checker_finds_a_cycle() -> None:
    graph = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": 1}, "b": {}}) is None


def test_the_layers_are_ordered() -> None:
    assert layer("tocsin._signal") < layer("tocsin.signals") < layer("tocsin.apps")
    assert layer("tocsin.apps._registry") == layer("tocsin.integrations.sqlalchemy")
    # The Celery integration is a transport of durable receivers: it may build
    # on tocsin.durable, which the emitters under integrations may not.
    assert layer("tocsin.integrations.celery") == layer("tocsin.durable") == DELIVERY
    assert layer("tocsin.integrations.celery") > layer("tocsin.integrations")
    with pytest.raises(AssertionError, match="is in no layer"):
        layer("tocsin.newthing")


# -- importing each module first, alone ------------------------------------------------

IMPORT_EACH = """
import importlib, json, sys

def fresh():
    for name in [n for n in sys.modules if n == "tocsin" or n.startswith("tocsin.")]:
        del sys.modules[name]

result = {}
for name in json.loads(sys.argv[1]):
    fresh()
    try:
        importlib.import_module(name)
    except Exception as error:
        result[name] = {"error": f"{type(error).__name__}: {error}"}
    else:
        loaded = sorted(n for n in sys.modules if n == "tocsin" or n.startswith("tocsin."))
        result[name] = {"loaded": loaded}
print(json.dumps(result))
"""


def test_every_module_imports_first_and_alone_loading_no_higher_layer() -> None:
    run = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH, json.dumps(sorted(MODULES))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    problems = []
    for module, outcome in result.items():
        if "error" in outcome:
            if "tocsin[" in outcome["error"]:  # an extra that is not installed
                continue
            problems.append(f"importing {module} first raised {outcome['error']}")
            continue
        for loaded in outcome["loaded"]:
            if layer(loaded) > layer(module):
                problems.append(f"importing {module} loaded {loaded}")
    assert problems == []
    assert set(result) == set(MODULES)
