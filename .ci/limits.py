"""Layout limits CI enforces (issue "One room per job").

    python .ci/limits.py          # prints the figures, exits 1 when a limit is broken

- no module over 500 lines (migrations and the stdlib-only sandbox kernel excepted);
- no function over 80 lines (migrations excepted);
- no import cycle between first-party modules, counting imports inside functions and
  under ``if TYPE_CHECKING:`` (a type-only cycle still ties two modules together);
- nothing under bots/ imports core.store, and nothing under core/ imports bots/;
- SQL stays in core/store/: no other module imports sqlalchemy.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "bots")
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
MODULE_EXEMPT = ("core/store/migrations/", "core/tools/code_interpreter/kernel.py")
FUNCTION_EXEMPT = ("core/store/migrations/",)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


def imports_of(name: str, path: Path, tree: ast.AST, known: set[str]) -> set[str]:
    """First-party modules ``name`` imports anywhere in its body."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                targets.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                targets.add(sub if sub in known else mod)
    edges = set()
    for target in targets:
        # "import core.store.tables" names a module; walk up to the nearest known one.
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            edges.add(target)
    return edges


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main() -> int:
    mods = sources()
    known = set(mods)
    graph: dict[str, set[str]] = {}
    problems: list[str] = []
    longest_module = ("", 0)
    longest_function = ("", 0)
    for name, path in mods.items():
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, filename=rel)
        lines = len(text.splitlines())
        if not rel.startswith(MODULE_EXEMPT):
            longest_module = max(longest_module, (rel, lines), key=lambda t: t[1])
            if lines > MAX_MODULE_LINES:
                problems.append(f"{rel}: {lines} lines (limit {MAX_MODULE_LINES})")
        if not rel.startswith(FUNCTION_EXEMPT):
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                    length = (node.end_lineno or node.lineno) - start + 1
                    where = f"{rel}:{node.lineno} {node.name}"
                    longest_function = max(longest_function, (where, length), key=lambda t: t[1])
                    if length > MAX_FUNCTION_LINES:
                        problems.append(f"{where}: {length} lines (limit {MAX_FUNCTION_LINES})")
        graph[name] = imports_of(name, path, tree, known)
        if name.startswith("bots"):
            for target in graph[name]:
                if target == "core.store" or target.startswith("core.store."):
                    problems.append(f"{rel}: imports {target} (bots/ never touches the store)")
        if not rel.startswith("core/store/"):
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level:
                    names = [node.module or ""]
                for mod in names:
                    if mod == "sqlalchemy" or mod.startswith("sqlalchemy."):
                        problems.append(f"{rel}: imports {mod} (SQL lives in core/store/)")
        if name.startswith("core"):
            for target in graph[name]:
                if target == "bots" or target.startswith("bots."):
                    problems.append(f"{rel}: imports {target} (core/ never imports bots/)")
    found = cycles(graph)
    for component in found:
        problems.append("import cycle: " + " <-> ".join(component))
    print(f"modules: {len(mods)}")
    print(f"largest module: {longest_module[0]} ({longest_module[1]} lines)")
    print(f"longest function: {longest_function[0]} ({longest_function[1]} lines)")
    print(f"import cycles: {len(found)}")
    for line in problems:
        print("  " + line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
