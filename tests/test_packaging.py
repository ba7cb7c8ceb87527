"""The package as it ships: the wheel's files, its metadata (name, Python versions, extras, floors), one
version source, and the core working without torch.

The wheel is $DFGRAPH_WHEEL when CI gives one (.ci/run builds it once for every job), else it is built
here from the source tree beside tests/.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DIST = "dfgraph-engine"
CORE_FLOORS = {
    "attrs": "23.1",
    "networkx": "3.0",
    "beartype": "0.20.0",
    "jaxtyping": "0.3.10",
    "tqdm": "4.60",
}
EXTRAS = {
    "diffusion": {"torch": "2.6", "diffusers": "0.40", "transformers": "5.0", "pillow": "10.0"},
    "testing": {"hypothesis": "6.100"},
    "ray": {"ray": "2.60"},
}
# the library's folder in the repository, and the name it installs under
LIBRARY = ("blocks", "dfgraph_blocks")


def source_tree() -> bool:
    return (ROOT / "pyproject.toml").is_file() and (ROOT / "dfgraph" / "__init__.py").is_file()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel under test: CI's, or one built now from the source tree."""
    given = os.environ.get("DFGRAPH_WHEEL")
    if given:
        return Path(given)
    assert source_tree(), "no DFGRAPH_WHEEL and no source tree to build one from"
    out = tmp_path_factory.mktemp("dist")
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--wheel-dir",
        str(out),
        str(ROOT),
    ]
    if _has_setuptools(77):  # build with this environment's setuptools: no download
        command.append("--no-build-isolation")
    subprocess.run(command, check=True, capture_output=True)
    (built,) = out.glob("dfgraph_engine-*.whl")
    return built


def _has_setuptools(major: int) -> bool:
    try:
        return int(importlib.metadata.version("setuptools").split(".")[0]) >= major
    except importlib.metadata.PackageNotFoundError:
        return False


def names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(archive.read(name).decode())


def requirements(wheel: Path) -> dict[str | None, dict[str, str]]:
    """{extra or None: {distribution: floor}} from Requires-Dist; every requirement is `name>=floor`."""
    out: dict[str | None, dict[str, str]] = {}
    for line in metadata(wheel).get_all("Requires-Dist") or []:
        spec, _, marker = line.partition(";")
        extra = re.search(r"""extra\s*==\s*["']([^"']+)["']""", marker)
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)>=([0-9][^,\s]*)", spec.strip())
        assert match, f"not a single >= floor: {line!r}"
        out.setdefault(extra.group(1) if extra else None, {})[match.group(1)] = match.group(2)
    return out


def source_files() -> Iterator[tuple[str, str]]:
    """(path in the repository, path in the wheel) for every file of the shipped packages."""
    for folder, installed in (("dfgraph", "dfgraph"), LIBRARY):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                relative = path.relative_to(ROOT / folder).as_posix()
                yield f"{folder}/{relative}", f"{installed}/{relative}"


# -- the wheel's files ---------------------------------------------------------------------------------


def test_the_wheel_holds_every_file_of_both_packages_and_nothing_else_at_the_top(wheel: Path) -> None:
    files = names(wheel)
    for required in [
        "dfgraph/__init__.py",
        "dfgraph/py.typed",
        "dfgraph/cli.py",
        "dfgraph_blocks/__init__.py",
        "dfgraph_blocks/py.typed",
        "dfgraph_blocks/examples.py",
        "dfgraph_blocks/diffusers_compat.py",
        "dfgraph_blocks/diffusion/__init__.py",
        "dfgraph_blocks/diffusion/demo.py",
        "dfgraph_blocks/diffusion/tiny.py",
    ]:
        assert required in files, required
    if source_tree():  # every module and data file of the source packages, py.typed and schemas included
        missing = [repo for repo, installed in source_files() if installed not in files]
        assert not missing, missing
    tops = {name.split("/")[0] for name in files}
    dist_info = {t for t in tops if t.endswith(".dist-info")}
    # no top-level `blocks` (a user's own blocks/ would shadow it), no tests or benchmarks
    assert tops - dist_info == {"dfgraph", "dfgraph_blocks"}
    (info,) = dist_info
    assert f"{info}/licenses/LICENSE" in files
    with zipfile.ZipFile(wheel) as archive:
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    assert re.search(r"^dfgraph = dfgraph\.cli:main$", entry_points, flags=re.M)


def test_every_module_the_readme_names_is_in_the_wheel(wheel: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    modules = set(re.findall(r"\b((?:dfgraph|dfgraph_blocks)(?:\.\w+)+)", readme))
    modules |= set(
        re.findall(r"^\s*(?:from|import) ((?:dfgraph|dfgraph_blocks)\b[\w.]*)", readme, flags=re.M)
    )
    files = names(wheel)
    checked = 0
    for dotted in sorted(modules):
        parts = dotted.split(".")
        # the longest prefix that is a module or package; the rest are attributes (df.Port, tiny.unet)
        for end in range(len(parts), 0, -1):
            path = "/".join(parts[:end])
            if f"{path}.py" in files or f"{path}/__init__.py" in files:
                checked += 1
                break
        else:
            pytest.fail(f"the README names {dotted}, which the wheel does not hold")
    for named in ("dfgraph_blocks.diffusion", "dfgraph_blocks.diffusers_compat", "dfgraph.testing"):
        assert any(m == named or m.startswith(f"{named}.") for m in modules), named
    assert checked == len(modules)


# -- metadata ---------------------------------------------------------------------------------------------


def test_metadata_name_python_versions_license_and_classifiers(wheel: Path) -> None:
    meta = metadata(wheel)
    assert meta["Name"] == DIST
    assert meta["Requires-Python"] == ">=3.11"
    assert meta["License-Expression"] == "Apache-2.0"
    classifiers = meta.get_all("Classifier") or []
    for version in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {version}" in classifiers
    assert "Typing :: Typed" in classifiers
    assert set(meta.get_all("Provides-Extra") or []) == set(EXTRAS)


def test_dependencies_floors_and_extras_as_designed(wheel: Path) -> None:
    deps = requirements(wheel)
    assert deps[None] == CORE_FLOORS  # the core: no torch, no hypothesis
    assert {extra: deps.get(extra) for extra in EXTRAS} == EXTRAS


def test_the_dev_group_holds_the_tools() -> None:
    if not source_tree():
        pytest.skip("the dev group lives in pyproject.toml, which only the source tree has")
    group = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["dev"]
    tools = {re.split(r"[<>=!~ \[]", spec, maxsplit=1)[0] for spec in group}
    assert {"pytest", "hypothesis", "mypy", "ruff"} <= tools


# -- one version source --------------------------------------------------------------------------------


def _version_in(source: str) -> str:
    (value,) = [
        node.value.value
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
        and isinstance(node.value, ast.Constant)
    ]
    assert isinstance(value, str)
    return value


def test_one_version_source(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        version = _version_in(archive.read("dfgraph/__init__.py").decode())
        others = [
            n
            for n in archive.namelist()
            if n.endswith(".py")
            and n != "dfgraph/__init__.py"
            and "__version__ =" in archive.read(n).decode()
        ]
    assert metadata(wheel)["Version"] == version
    assert not others  # no second place that spells the version
    assert wheel.name.startswith(f"dfgraph_engine-{version}-")
    if source_tree():
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())
        assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
        assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "dfgraph.__version__"}
        changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
        assert re.search(rf"^## {re.escape(version)}\b", changelog, flags=re.M)
    try:  # where the distribution is installed (CI's venvs), what it reports is that same version
        installed = importlib.metadata.version(DIST)
    except importlib.metadata.PackageNotFoundError:
        return
    import dfgraph

    assert installed == dfgraph.__version__ == version


# -- the core without torch -------------------------------------------------------------------------------

NO_HEAVY = """
import sys

class Refuse:
    # any import of the [diffusion] extra or of hypothesis fails, installed or not
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "diffusers", "transformers", "PIL", "hypothesis"}:
            raise ImportError(f"refused: {name}")
        return None

sys.meta_path.insert(0, Refuse())
import dfgraph as df
from dfgraph.cli import main
from dfgraph_blocks import examples

@df.block(outputs="x")
def add_one(x: int) -> int:
    return x + 1

loop = df.Loop(df.Sequential(add_one, add_one), times="num_steps")
prog = df.compile(loop, streams=2)
assert prog(num_steps=10, x=0, output="x") == 20
assert df.check(examples.miswired).errors
assert main(["check", "dfgraph_blocks.examples:counter_two"]) == 0
assert main(["schedule", "dfgraph_blocks.examples:guided_loop"]) == 0
print("ok")
"""

NOT_IMPORTED = """
import sys
import dfgraph as df
import dfgraph.cli
import dfgraph_blocks.examples
df.compile(dfgraph_blocks.examples.guided_loop)
print(sorted({m.split(".")[0] for m in sys.modules} & {"torch", "diffusers", "transformers", "hypothesis"}))
"""


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -c code` in `cwd`, importing dfgraph from the source tree when there is one."""
    env = dict(os.environ)
    if source_tree():
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd, check=False
    )


def test_the_core_and_the_examples_work_without_torch_or_hypothesis(tmp_path: Path) -> None:
    done = run_python(NO_HEAVY, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "ok"


def test_import_and_compile_load_no_heavy_module_even_where_installed(tmp_path: Path) -> None:
    done = run_python(NOT_IMPORTED, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_block_library_is_not_shadowed_by_a_users_blocks_package(tmp_path: Path) -> None:
    (tmp_path / "blocks").mkdir()
    (tmp_path / "blocks" / "__init__.py").write_text('WHOSE = "the user project"\n')
    code = (
        "import blocks, sys\n"
        "from dfgraph.cli import main\n"
        "assert blocks.WHOSE == 'the user project'\n"
        "sys.exit(main(['check', 'dfgraph_blocks.examples:counter_two']))\n"
    )
    done = run_python(code, tmp_path)  # cwd is the user's project, first on sys.path
    assert done.returncode == 0, done.stdout + done.stderr
    assert "dfgraph_blocks.examples:counter_two: 0 errors, 0 warnings" in done.stdout


# -- README install lines and examples ------------------------------------------------------------------


def test_the_readme_installs_the_distribution_by_its_name() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(rf"^pip install {DIST}\s", readme, flags=re.M)
    assert f'pip install "{DIST}[diffusion]"' in readme
    # `pip install dfgraph` would install an unrelated project
    assert not re.search(r"""pip\s+install\s+["']?dfgraph(?![-\w])""", readme)


def test_the_readme_examples_ci_runs_are_the_complete_programs() -> None:
    if not (ROOT / ".ci" / "readme_examples.py").is_file():
        pytest.skip("the CI scripts live in the source tree")
    spec = importlib.util.spec_from_file_location("readme_examples", ROOT / ".ci" / "readme_examples.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    found = module.examples((ROOT / "README.md").read_text(encoding="utf-8"))
    firsts = [code.splitlines()[0] for code in found]
    assert firsts[0] == "import dfgraph as df"  # the quickstart first: later examples use its names
    assert any("dfgraph_blocks.diffusion" in code for code in found)
    assert any("inputs_for" in code for code in found)
    assert not any(code.startswith("def __call__") for code in found)  # generated code is not an example
