"""The layers of ``src/obliviate`` hold: imports flow down, no loop, no long file.

Reads the source with ``ast`` and imports nothing from obliviate, so it runs in a blink.
Every import counts: module level, inside functions, under ``if TYPE_CHECKING:``.
Each test lists all its violations at once. The picture is in ``docs/architecture.md``.
"""

from __future__ import annotations

import ast
import itertools
from collections import defaultdict, deque
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "obliviate"

# fmt: off
#: Top to bottom: one row per height, its layers, and the top-level modules or packages of
#: src/obliviate that make each. A module imports from its own row and below, never above.
LAYERS: tuple[dict[str, tuple[str, ...]], ...] = (
    {"cli":       ("cli", "__main__")},
    {"api":       ("api",)},              # the public front: re-exports the workflows
    {"workflows": ("workflows",)},        # one module per command
    {"attacks": ("attacks",), "evaluation": ("evaluation",), "train": ("train",),
     "guard": ("guard",), "report": ("report",)},
    {"methods":   ("methods",)},
    {"models":    ("models",)},
    {"data":      ("data",)},
    {"common":    ("errors", "progress", "rundir", "cache", "memory", "__init__", "yamltext",
                   "options",             # one definition per option: cli and workflows read it
                   "recipes")},           # YAML files only, read by train/recipes.py
)
# fmt: on

#: Within a row: (importer, imported) layers that must not meet.
FORBIDDEN = {("guard", "evaluation")}  # evaluation runs models behind guards, not the reverse

#: ``report`` reads figures, it does not make them: the only modules of its own row it imports.
REPORT_MAY_IMPORT = {"obliviate.evaluation.figures"}
REPORT_ROW_LAYERS = ("attacks", "evaluation", "train", "guard")

#: The one import from a layer above: the package's lazy ``__getattr__`` (PEP 562) forwards
#: ``obliviate.unlearn`` and the rest of the API to ``obliviate.api``. It runs on first use,
#: after every module is loaded, so it is neither a layer violation nor part of a loop.
LAZY_FORWARD = ("obliviate", "obliviate.api")

MAX_LINES = 700
MAX_LINES_OF = {"api.py": 200}

LAYER_OF = {top: layer for row in LAYERS for layer, tops in row.items() for top in tops}
HEIGHT = {layer: height for height, row in enumerate(LAYERS) for layer in row}


@dataclass(frozen=True)
class Import:
    path: str  # of the importing file, relative to the repository root
    line: int
    importer: str  # dotted module names
    imported: str


def module_name(file: Path) -> str:
    parts = ("obliviate", *file.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str | None:
    """``obliviate.evaluation.metrics`` → ``evaluation``; None for a module in no layer."""
    parts = module.split(".")
    return LAYER_OF.get(parts[1] if len(parts) > 1 else "__init__")


FILES = sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)
MODULES = {module_name(f): f for f in FILES}


def resolve(dotted: str) -> str:
    """The module (file) an import of ``dotted`` runs: itself, or its nearest package."""
    while dotted not in MODULES and "." in dotted:
        dotted = dotted.rsplit(".", 1)[0]
    return dotted


def known(dotted: str) -> str:
    return dotted if dotted in MODULES else f"?{dotted}"


def is_obliviate(dotted: str | None) -> bool:
    return dotted is not None and (dotted == "obliviate" or dotted.startswith("obliviate."))


def imports_of(file: Path) -> list[Import]:
    """Every obliviate import of ``file``; ``imported`` is "?name" where no file is ``name``."""
    importer = module_name(file)
    path = str(file.relative_to(ROOT))
    found: dict[tuple[int, str], Import] = {}
    for node in ast.walk(ast.parse(file.read_text(), filename=path)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [known(a.name) for a in node.names if is_obliviate(a.name)]
        elif isinstance(node, ast.ImportFrom):
            base = node.module
            if node.level:  # relative: from the importer's package, up level - 1
                package = importer if file.name == "__init__.py" else importer.rsplit(".", 1)[0]
                package = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{package}.{base}" if base else package
            if is_obliviate(base) and base not in MODULES:
                targets = [known(base)]
            elif is_obliviate(base):
                # ``from obliviate.evaluation import metrics`` imports the module metrics
                targets = [resolve(f"{base}.{a.name}") for a in node.names]
        for target in targets:
            found.setdefault((node.lineno, target), Import(path, node.lineno, importer, target))
    return sorted(found.values(), key=lambda i: (i.line, i.imported))


@cache
def all_imports() -> list[Import]:
    return [imp for f in FILES for imp in imports_of(f)]


def layer_violations() -> list[str]:
    problems = [
        f"{MODULES[m].relative_to(ROOT)}: {m} is in no layer (add it to LAYERS)"
        for m in sorted(MODULES)
        if layer(m) is None
    ]
    for imp in all_imports():
        if imp.imported.startswith("?"):
            problems.append(f"{imp.path}:{imp.line} imports {imp.imported[1:]}: no such module")
            continue
        mine, theirs = layer(imp.importer), layer(imp.imported)
        if (imp.importer, imp.imported) == LAZY_FORWARD:
            continue
        if mine is None or theirs is None or mine == theirs:
            continue
        where = f"{imp.path}:{imp.line} imports {imp.imported}"
        if HEIGHT[theirs] < HEIGHT[mine]:
            problems.append(f"{where} (layer {theirs} above layer {mine})")
        elif (mine, theirs) in FORBIDDEN:
            problems.append(f"{where} ({mine} must not import {theirs})")
        elif (
            mine == "report"
            and theirs in REPORT_ROW_LAYERS
            and imp.imported not in REPORT_MAY_IMPORT
        ):
            allowed = ", ".join(sorted(REPORT_MAY_IMPORT))
            problems.append(
                f"{where} (report imports from {'/'.join(REPORT_ROW_LAYERS)} only {allowed})"
            )
    return problems


def test_no_module_imports_from_a_layer_above_its_own():
    problems = layer_violations()
    if problems:
        pytest.fail(f"{len(problems)} layer violations:\n" + "\n".join(problems), pytrace=False)


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module (or a self-import)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def shortest_cycle(graph: dict[str, set[str]], start: str, within: set[str]) -> list[str]:
    """The shortest import path from ``start`` back to itself, inside one component."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph[node] & within):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start}")


def import_loops() -> list[str]:
    graph: dict[str, set[str]] = defaultdict(set)
    line_of: dict[tuple[str, str], str] = {}
    for imp in all_imports():
        if imp.imported in MODULES and (imp.importer, imp.imported) != LAZY_FORWARD:
            graph[imp.importer].add(imp.imported)
            line_of.setdefault((imp.importer, imp.imported), f"{imp.path}:{imp.line}")
    for module in MODULES:
        graph[module]  # every module a node
    loops = []
    for component in strongly_connected(graph):
        cycle = shortest_cycle(graph, component[0], set(component))
        steps = [line_of[(a, b)] for a, b in itertools.pairwise(cycle)]
        loop = " -> ".join(cycle) + f"  ({', '.join(steps)})"
        if len(component) > len(cycle) - 1:
            loop += f"; {len(component)} modules in this loop: {', '.join(component)}"
        loops.append(loop)
    return loops


def test_no_import_loop():
    loops = import_loops()
    if loops:
        pytest.fail(f"{len(loops)} import loops:\n" + "\n".join(loops), pytrace=False)


def test_no_file_is_too_long():
    problems = []
    for file in FILES:
        rel = file.relative_to(SRC)
        limit = MAX_LINES_OF.get(str(rel), MAX_LINES)
        lines = len(file.read_text().splitlines())
        if lines > limit:
            problems.append(f"{file.relative_to(ROOT)}: {lines} lines (at most {limit})")
    if problems:
        pytest.fail(f"{len(problems)} files too long:\n" + "\n".join(problems), pytrace=False)
