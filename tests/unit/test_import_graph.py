"""The harness's import graph has no cycles, between modules or between packages.

Read statically (``ast``), so it costs nothing and sees every import: those inside functions
too (a lazy import still ties the two modules together), but not those under
``TYPE_CHECKING`` (never run). Importing ``a.b.c`` runs ``a.b`` first: a module depends on the
packages above what it imports.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

import harness

ROOT = Path(harness.__file__).parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imported(name: str, path: Path) -> set[str]:
    """Dotted names ``name`` imports (absolute), outside ``if TYPE_CHECKING:`` blocks."""
    out: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                out.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    up = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*up, base] if base else up)
                out.add(base)
                out.update(f"{base}.{alias.name}" for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return out


def _graph() -> dict[str, set[str]]:
    """Module -> the harness modules (and the packages above them) its imports run."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = graph.setdefault(name, set())
        for target in _imported(name, path):
            while target:
                if target in modules and target != name and not name.startswith(target + "."):
                    deps.add(target)
                target = target.rpartition(".")[0]
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        return list(error.args[1])
    return None


def test_no_module_imports_itself_round_a_cycle() -> None:
    assert _cycle(_graph()) is None


def test_no_two_packages_import_each_other() -> None:
    def unit(module: str) -> str:
        return ".".join(module.split(".")[:2])

    packages: dict[str, set[str]] = {}
    for module, deps in _graph().items():
        packages.setdefault(unit(module), set()).update(
            unit(d) for d in deps if unit(d) != unit(module)
        )
    assert _cycle(packages) is None


def test_the_check_sees_a_cycle_through_a_lazy_import(tmp_path: Path) -> None:
    a = tmp_path / "a.py"
    a.write_text("def f():\n    from harness.b import x\n", encoding="utf-8")
    assert "harness.b" in _imported("harness.a", a)
    assert _cycle({"harness.a": {"harness.b"}, "harness.b": {"harness.a"}}) is not None


@pytest.mark.parametrize("guard", ["TYPE_CHECKING", "typing.TYPE_CHECKING"])
def test_imports_only_for_the_type_checker_are_not_edges(tmp_path: Path, guard: str) -> None:
    a = tmp_path / "a.py"
    a.write_text(f"if {guard}:\n    from harness.b import x\n", encoding="utf-8")
    assert _imported("harness.a", a) == set()


# The reference runtime takes a client, its servers, a clock and its config: the fakes and the
# rig that builds them (the scenarios layer) are not its to import.
_NOT_THE_RUNTIMES = ("fake_servers", "harness.scenarios")


def _forbidden(name: str, path: Path) -> set[str]:
    return {
        target
        for target in _imported(name, path)
        if any(target == f or target.startswith(f + ".") for f in _NOT_THE_RUNTIMES)
    }


def test_the_reference_runtime_imports_neither_the_fakes_nor_the_rig() -> None:
    modules, graph = _modules(), _graph()
    runtime = [m for m in modules if m == "harness.runtime" or m.startswith("harness.runtime.")]
    assert "harness.runtime.runtime" in runtime
    direct = {m: _forbidden(m, modules[m]) for m in runtime}
    assert {m: found for m, found in direct.items() if found} == {}
    # Nor through another harness module it imports (lazily or not).
    reached: set[str] = set()
    pending = list(runtime)
    while pending:
        module = pending.pop()
        if module not in reached:
            reached.add(module)
            pending += graph[module]
    assert not any(m.startswith("harness.scenarios") for m in reached)
    through = {m: _forbidden(m, modules[m]) for m in reached - set(runtime)}
    assert {m: found for m, found in through.items() if found} == {}


def test_the_boundary_check_sees_a_lazy_import_of_a_fake(tmp_path: Path) -> None:
    a = tmp_path / "a.py"
    a.write_text("def f():\n    from fake_servers.mcp import build_server\n", encoding="utf-8")
    assert _forbidden("harness.runtime.a", a) == {
        "fake_servers.mcp",
        "fake_servers.mcp.build_server",
    }
