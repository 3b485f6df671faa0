"""The import picture stays as designed: dependencies point one way and no module imports itself in a circle.

Layers (README "Layout"): the engine core knows no env, algorithm, hook or preset; ``algos`` and
``hooks`` import only the core; the FX simulator (``envs.fx`` without ``family``/``research``)
imports nothing of the engine; the FX research side and the live side (``envs.fx.live``: agent, export,
paper trading) import the core and the simulator;
``configs`` composes everything; the command modules (``python -m engine.<name>``) sit on top.
Every ``import`` counts, also those inside functions (only ``if TYPE_CHECKING:`` blocks are skipped).
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path
from tests.paths import ROOT

PACKAGES = ("engine", "algos", "envs", "hooks", "configs")
COMMANDS = {"engine.ppo", "engine.a2c", "engine.backtest", "engine.tune", "engine.bench", "engine.cli", "engine.walkforward",
            "engine.convert", "engine.export", "engine.paper"}

ALLOWED = {
    "core": {"core"},
    "algos": {"core", "algos"},
    "hooks": {"core", "hooks"},
    "fx-sim": {"fx-sim"},
    "fx-research": {"core", "fx-sim", "fx-research"},
    "configs": {"core", "algos", "hooks", "fx-sim", "fx-research", "configs"},
    "command": {"core", "algos", "hooks", "fx-sim", "fx-research", "configs", "command"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer(module: str) -> str:
    top = module.split(".")[0]
    if module in COMMANDS:
        return "command"
    if top == "engine":
        return "core"
    if top in ("algos", "hooks", "configs"):
        return top
    if module == "envs.fx.family" or module.startswith(("envs.fx.research", "envs.fx.live")):
        return "fx-research"
    return "fx-sim"


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _in_type_checking(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules imported by ``path`` (``from a.b import c`` counts a.b.c when it is a module)."""
    tree = ast.parse(path.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or _in_type_checking(node, parents):
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:  # relative import
                pkg = module_name(path).split(".")
                pkg = pkg[: len(pkg) - node.level + (1 if path.name == "__init__.py" else 0)]
                base = ".".join([*pkg, base] if base else pkg)
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        for name in names:
            while name and name not in modules:  # a.b.func -> a.b
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {m: imports_of(p, modules) - {m} for m, p in modules.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_dependencies_point_one_way() -> None:
    g = graph()
    bad = sorted(f"{m} ({layer(m)}) imports {d} ({layer(d)})"
                 for m, deps in g.items() for d in deps if layer(d) not in ALLOWED[layer(m)])
    assert bad == [], "\n".join(bad)


def test_core_names_no_env() -> None:
    """No code token of the core is the string ``"fx"`` or the name ``fx`` (docstrings may give examples)."""
    offenders = []
    for module, path in project_modules().items():
        if layer(module) != "core":
            continue
        for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
            if (tok.type == tokenize.NAME and tok.string == "fx") or \
                    (tok.type == tokenize.STRING and tok.string.strip("'\"") == "fx"):
                offenders.append(f"{module}:{tok.start[0]}")
    assert offenders == []


def test_the_checks_catch_what_they_guard() -> None:
    """The checks themselves: a circle and a wrong-way arrow are found."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer("engine.loop") == "core" and layer("engine.ppo") == "command"
    assert layer("envs.fx.vector") == "fx-sim" and layer("envs.fx.research.backtest") == "fx-research"
    assert layer("envs.fx.live.agent") == "fx-research" and layer("envs.fx.windows") == "fx-sim"
    assert "fx-research" not in ALLOWED["core"] and "core" not in ALLOWED["fx-sim"]
    modules = project_modules()
    assert "algos.ppo" in graph()["configs.train"] or "algos" in graph()["configs.train"]
    assert {"engine.keys", "algos.base"} <= imports_of(modules["algos.ppo"], modules)
