# Shared by the CI jobs (sourced): find interpreters, build the wheel once, make venvs, copy the test tree.
# shellcheck shell=bash

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# python_for 3.12: a python3.12 on PATH, else pyenv's (its shim fails where 3.12 is not the global version)
python_for() {
    local exe
    for exe in "python$1" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$1".*/bin/"python$1"; do
        if "$exe" -c "import sys; assert sys.version_info[:2] == tuple(map(int, '$1'.split('.')))" \
            >/dev/null 2>&1; then
            command -v "$exe"
            return
        fi
    done
    echo "CI: no python$1 found" >&2
    return 1
}

# pip_install VENV ARGS...: quiet, without this machine's index warnings; fails when pip fails (pipefail)
pip_install() {
    local venv=$1
    shift
    "$venv/bin/python" -m pip install --quiet "$@" 2>&1 | { grep -v "is neither a file nor a directory" || true; }
}

# new_venv DIR PYTHON: a fresh venv with a pip that knows dependency groups (pip >= 25.1)
new_venv() {
    "$2" -m venv "$1"
    pip_install "$1" --upgrade "pip>=25.1"
}

# the_wheel: the wheel under test, $DFGRAPH_WHEEL when .ci/run built it, else built now into $work/dist
the_wheel() {
    if [[ -n "${DFGRAPH_WHEEL:-}" ]]; then
        echo "$DFGRAPH_WHEEL"
        return
    fi
    local builder=python3
    [[ -x "$repo/.venv/bin/python" ]] && builder="$repo/.venv/bin/python"
    "$builder" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" "$repo" 2>&1 |
        { grep -v "is neither a file nor a directory" || true; } >&2
    ls "$work"/dist/dfgraph_engine-*.whl
}

# test_tree DIR: tests/ and benchmarks/ (test infrastructure, not shipped) beside the README the tests read,
# in a directory where the source tree is not importable
test_tree() {
    mkdir -p "$1"
    cp -r "$repo/tests" "$repo/benchmarks" "$repo/docs" "$repo/README.md" "$repo/pyproject.toml" \
        "$repo/.pre-commit-hooks.yaml" "$repo/CHANGELOG.md" "$1/"
}

# assert_installed VENV MODULE...: each module comes from the venv's site-packages, not the source tree
assert_installed() {
    local venv=$1
    shift
    "$venv/bin/python" - "$@" <<'PY'
import importlib, sys
for name in sys.argv[1:]:
    module = importlib.import_module(name)
    assert "site-packages" in module.__file__, module.__file__  # the installed wheel, not the tree
    print(f"CI: {name} from {module.__file__}", file=sys.stderr)
PY
}

# check_examples VENV [diffusion]: `dfgraph check` on the shipped examples, from a user's project that has
# its own top-level `blocks` package (which must not shadow the installed block library)
check_examples() {
    local venv=$1 project
    project=$(mktemp -d)
    mkdir "$project/blocks"
    echo 'WHOSE = "the user project"' >"$project/blocks/__init__.py"
    (
        cd "$project"
        local targets=(dfgraph_blocks.examples:counter_one dfgraph_blocks.examples:counter_two
            dfgraph_blocks.examples:guided_loop)
        [[ "${2:-}" == diffusion ]] && targets+=(dfgraph_blocks.diffusion.demo:tiny_text2img)
        "$venv/bin/dfgraph" check "${targets[@]}"
        local status=0
        "$venv/bin/dfgraph" check dfgraph_blocks.examples:miswired >miswired.txt || status=$?
        [[ $status == 1 ]] || { echo "CI: dfgraph check of miswired exited $status, not 1" >&2; exit 1; }
        grep -q "dfgraph_blocks.examples:miswired: 3 errors, 0 warnings" miswired.txt
        "$venv/bin/python" -c 'import blocks, dfgraph_blocks; assert blocks.WHOSE == "the user project"'
    )
    rm -rf "$project"
}
