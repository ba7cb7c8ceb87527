"""The public surface: dfgraph's modules import each other without a circle, blocks/ uses only `dfgraph`'s
public names, the exports work, and the README's diagnostics table is exactly the registry.

The import graph is read from the source (ast), so an import inside a function counts as much as one at
the top of a module; only `if TYPE_CHECKING:` blocks are left out (they never run). The modules checked
are the ones imported: the source tree, or the installed wheel when CI tests that.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

import dfgraph as df
import dfgraph_blocks as blocks
from dfgraph import compose
from dfgraph.diagnostics import REGISTRY, registry_table

PACKAGE = Path(df.__file__).parent
BLOCKS = Path(blocks.__file__).parent
README = Path(__file__).resolve().parent.parent / "README.md"


# -- reading imports ---------------------------------------------------------------------------------------


def modules_of(package: Path, name: str) -> dict[str, Path]:
    """Every module of a package directory by dotted name (a package's __init__ under the package's name)."""
    found: dict[str, Path] = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join([name, *parts])] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: in functions too, not in `if TYPE_CHECKING:` (its else runs)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def imported_modules(module: str, path: Path, known: set[str]) -> set[str]:
    """The modules among `known` that `module` imports by name.

    `from pkg import name` imports the submodule pkg.name when there is one, else pkg itself. The parent
    packages Python runs on the way (pkg/__init__ for pkg.sub) are not edges: every module has those.
    """
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets: set[str] = set()
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:  # relative: from . import x, from ..a import b
            anchor = package.split(".")
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            targets.add(sub if sub in known else base)
    return {t for t in targets if t in known and t != module}


def import_graph(package: Path, name: str) -> nx.DiGraph:
    """module -> module it imports, among the modules of one package."""
    modules = modules_of(package, name)
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for module, path in modules.items():
        graph.add_edges_from((module, target) for target in imported_modules(module, path, set(modules)))
    return graph


def cycles(graph: nx.DiGraph) -> list[list[str]]:
    """One listing per import circle (each strongly connected set of modules, sorted)."""
    return sorted(sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1)


# -- the import graph has no circle ------------------------------------------------------------------------


def test_no_import_circle_among_dfgraphs_modules() -> None:
    graph = import_graph(PACKAGE, "dfgraph")
    assert len(graph) >= 20  # the package was found and read
    assert ("dfgraph.program", "dfgraph.check") in graph.edges  # and its imports with it
    assert cycles(graph) == [], "modules that import each other (lazily or not): " + "; ".join(
        " <-> ".join(c) for c in cycles(graph)
    )


def test_composites_are_data_below_the_lowering_and_the_compiler() -> None:
    graph = import_graph(PACKAGE, "dfgraph")
    below_compose = nx.descendants(graph, "dfgraph.compose")
    assert below_compose <= {
        "dfgraph.block",
        "dfgraph.ports",
        "dfgraph.diagnostics",
        "dfgraph.errors",
        "dfgraph.types",
    }
    assert "dfgraph.compose" in nx.descendants(graph, "dfgraph.program")


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_the_cycle_finder_sees_lazy_and_relative_imports_but_not_type_checking_ones(tmp_path: Path) -> None:
    pkg = _write(
        tmp_path / "pkg",
        {
            "__init__.py": "from pkg.a import f\n",
            "a.py": "def f():\n    from pkg import b  # lazy\n    return b\n",
            "b.py": "from . import c\n",
            "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import f\n"
            "else:\n    import json\n",
            "sub/__init__.py": "",
            "sub/d.py": "from .. import a\nfrom ..sub import e\n",
            "sub/e.py": "import pkg.sub.d\n",
        },
    )
    graph = import_graph(pkg, "pkg")
    assert set(graph.edges) == {
        ("pkg", "pkg.a"),
        ("pkg.a", "pkg.b"),
        ("pkg.b", "pkg.c"),
        ("pkg.sub.d", "pkg.a"),
        ("pkg.sub.d", "pkg.sub.e"),
        ("pkg.sub.e", "pkg.sub.d"),
    }
    assert cycles(graph) == [["pkg.sub.d", "pkg.sub.e"]]
    (pkg / "c.py").write_text("import pkg.a\n")  # the same import outside TYPE_CHECKING closes a circle
    assert cycles(import_graph(pkg, "pkg")) == [["pkg.a", "pkg.b", "pkg.c"], ["pkg.sub.d", "pkg.sub.e"]]


# -- blocks/ (and the CLI) use only dfgraph's public API ---------------------------------------------------


# dfgraph's public submodules, imported on demand (not by `import dfgraph`): all of each is public
PUBLIC_MODULES = frozenset({"distributed", "findings", "hooks", "render", "testing"})


def private_uses(path: Path, public: set[str]) -> list[str]:
    """What a module takes from dfgraph other than the package's public names (`dfgraph.__all__`) and
    its public submodules."""
    tree = ast.parse(path.read_text(), str(path))
    aliases: set[str] = set()
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "dfgraph":
                    aliases.add(alias.asname or "dfgraph")
                elif alias.name.startswith("dfgraph.") and alias.name[8:] not in PUBLIC_MODULES:
                    found.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "dfgraph":
            if node.module != "dfgraph":
                if (node.module or "")[8:] not in PUBLIC_MODULES:
                    found.append(f"line {node.lineno}: from {node.module} import ...")
                continue
            found.extend(
                f"line {node.lineno}: dfgraph.{a.name}"
                for a in node.names
                if a.name not in public and a.name not in PUBLIC_MODULES
            )
    for node in ast.walk(tree):  # df.name where df is the package
        if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)):
            continue
        if node.value.id in aliases and node.attr not in public and node.attr not in PUBLIC_MODULES:
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    return found


PUBLIC = set(df.__all__)


@pytest.mark.parametrize("path", sorted(BLOCKS.rglob("*.py")), ids=lambda p: str(p.relative_to(BLOCKS)))
def test_blocks_import_only_dfgraphs_public_names(path: Path) -> None:
    assert private_uses(path, PUBLIC) == []


def test_the_cli_imports_only_dfgraphs_public_names() -> None:
    assert private_uses(PACKAGE / "cli.py", PUBLIC) == []


def test_the_public_check_catches_submodules_private_names_and_attributes(tmp_path: Path) -> None:
    mod = tmp_path / "m.py"
    mod.write_text(
        "import dfgraph as df\nimport dfgraph.types\nfrom dfgraph import Loop, types\n"
        "from dfgraph.block import Note\nx = df.Sequential\ny = df.compose\n"
        "from dfgraph import render\nimport dfgraph.testing\nfrom dfgraph.hooks import Trace\nz = df.render\n"
    )
    assert private_uses(mod, PUBLIC) == [
        "line 2: import dfgraph.types",
        "line 3: dfgraph.types",
        "line 4: from dfgraph.block import ...",
        "line 6: df.compose",
    ]


# -- the exports -------------------------------------------------------------------------------------------


def test_every_public_name_is_exported_and_typed_names_are_the_implementations() -> None:
    assert all(hasattr(df, name) for name in df.__all__)
    assert sorted(df.__all__) == sorted(set(df.__all__))
    assert isinstance(df.__version__, str) and re.fullmatch(r"\d+\.\d+\.\d+.*", df.__version__)
    for name in ("RNG", "is_block", "Composite", "Note", "ports_text", "describe_type", "did_you_mean"):
        assert name in df.__all__


def test_the_exported_helpers_do_what_blocks_need() -> None:
    @df.block(outputs="x", mutates=(df.RNG,))
    def draw(x: int | None = None) -> int:
        return 0 if x is None else x

    seq = df.Sequential(draw)
    assert df.is_block(draw) and df.is_block(seq) and isinstance(seq, df.Composite)
    assert not df.is_block(len) and not df.is_block(object())
    assert df.ports_text(draw.inputs) == "x: int | None = None"
    assert df.describe_type(list[int] | None) == "list[int] | None"
    assert df.is_assignable(bool, int) and not df.is_assignable(str, int)
    assert df.type_union(bool, int) is int
    assert df.did_you_mean("stpes", ["steps", "x"]) == "; did you mean 'steps'?"
    assert df.did_you_mean("zzz", ["steps"]) == ""
    assert df.select_codes("DF2") == {c for c in df.REGISTRY if c.startswith("DF2")}
    assert df.REGISTRY["DF001"].severity is df.Severity.ERROR
    note = df.Note("DF202", "x", "typed as Any")
    assert (note.code, note.port) == ("DF202", "x")


def test_a_composite_reads_its_ports_and_compiles_through_what_the_package_connected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    @df.block(outputs="x")
    def inc(x: int) -> int:
        return x + 1

    seen: list[str] = []

    def interface(blk: object) -> tuple[tuple[df.Port, ...], tuple[df.Port, ...]]:
        seen.append("interface")
        return (df.Port("x", int),), (df.Port("x", int),)

    class Fake:
        def run(self, /, **inputs: object) -> object:
            return {"ran": inputs}

    monkeypatch.setattr(compose._Semantics, "interface", interface)
    monkeypatch.setattr(compose._Semantics, "compile", lambda blk: Fake())
    seq = df.Sequential(inc)
    assert [p.name for p in seq.inputs] == ["x"] and seq.outputs[0].name == "x"
    assert seq(x=1) == {"ran": {"x": 1}} and seen == ["interface"]  # derived once, cached
    monkeypatch.setattr(compose._Semantics, "interface", None)
    with pytest.raises(RuntimeError, match="import dfgraph"):
        _ = df.Sequential(inc).inputs


def test_a_program_interprets_without_a_lazy_import() -> None:
    @df.block(outputs="x")
    def inc(x: int) -> int:
        return x + 1

    prog = df.compile(df.Loop(inc, times="n"))
    assert prog.interpret(n=3, x=1) == prog(n=3, x=1) == {"x": 4}


# -- the diagnostics table ---------------------------------------------------------------------------------


def readme_table(section: str) -> str:
    """The first markdown table in a README section (from '## section' to the next heading)."""
    text = README.read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n#", 1)[0]
    lines = body.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end])


def test_the_readme_diagnostics_table_is_exactly_the_generated_registry_table() -> None:
    assert readme_table("Diagnostics") == registry_table(), (
        "regenerate it: python -c 'from dfgraph.diagnostics import registry_table; print(registry_table())'"
    )
    assert registry_table().count("\n") == len(REGISTRY) + 1  # the header, the rule, one row per code


# -- dfgraph.testing: the small documented part, the test generators apart -----------------------------------


def test_dfgraph_testing_exports_only_the_documented_user_api() -> None:
    import dfgraph.testing as testing

    assert sorted(testing.__all__) == [
        "CounterCase",
        "MAX_LOOP_ITEMS",
        "MAX_LOOP_STEPS",
        "SimulationError",
        "SimulationResult",
        "counter_loops",
        "dags",
        "happens_before",
        "increment",
        "inputs_for",
        "serial",
        "simulate",
    ]
    assert (testing.MAX_LOOP_STEPS, testing.MAX_LOOP_ITEMS) == (8, 4)  # as the README says
    assert not hasattr(testing, "well_typed_graphs") and not hasattr(testing, "Malformed")
    section = README.read_text().split("## Property testing your graphs\n", 1)[1].split("\n## ", 1)[0]
    documented = {"inputs_for", "counter_loops", "CounterCase", "increment", "dags", "simulate"}
    assert all(f"`{name}" in section for name in documented | {"MAX_LOOP_STEPS", "MAX_LOOP_ITEMS"})


def test_importing_dfgraph_testing_leaves_the_generators_unimported() -> None:
    code = "import sys, dfgraph.testing; print('dfgraph.testing.generators' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_readmes_counter_loops_example_runs_and_can_fail() -> None:
    example = next(
        b for b in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S) if "counter_loops" in b
    )
    namespace: dict[str, Any] = {}
    exec(example, namespace)
    namespace["test_nested_loops_count_right"]()  # the hypothesis test: compiled programs count right
    wrong = example.replace("== case.expected", "== case.expected + 1")
    exec(wrong, namespace)
    with pytest.raises(AssertionError):
        namespace["test_nested_loops_count_right"]()


def test_the_readmes_layout_names_every_module() -> None:
    """Every module of dfgraph is in the Layout, as `name.py` or, once it is a package, as `name/`."""
    layout = README.read_text().split("\n## Layout\n", 1)[1].split("```")[1]
    stems = [p.stem for p in PACKAGE.glob("*.py") if p.name != "__main__.py"]
    stems += [p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()]
    assert "testing" in stems and "compose" in stems  # both kinds were found
    missing = [s for s in stems if re.search(rf"(?<![\w/]){s}(\.py|/)", layout) is None]
    assert missing == []
