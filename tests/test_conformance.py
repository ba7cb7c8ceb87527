"""dfgraph's type relation against mypy as the oracle, on thousands of generated (producer, consumer) pairs.

The pairs, the vocabulary and the classification of disagreements are in tests/conformance_gen.py. mypy
runs once, cold (a fresh cache directory), over one generated file. Set DFGRAPH_CONFORMANCE_OUT to a path
to write the matrix there (the README quotes it).
"""

from __future__ import annotations

import os
import typing
from pathlib import Path

import pytest
from conformance_gen import DOCUMENTED, Outcome, generate, module_source, run

from dfgraph import types as dftypes

PAIRS = 3000
SEED = 9


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    return run(PAIRS, SEED, str(tmp_path_factory.mktemp("conformance")))


def test_generation_is_reproducible_and_nested() -> None:
    first, again = generate(500, SEED), generate(500, SEED)
    assert first == again and len(set(first)) == 500
    depth = max(p.count("[") for p, _ in first)
    assert depth >= 3  # nested several constructors deep
    near = sum(1 for p, c in first if p.split("[")[0] == c.split("[")[0])
    assert near > 150  # mostly near misses: same outer constructor
    _, lines = module_source(first)
    assert len(lines) == 500


def test_dfgraph_agrees_with_mypy(outcome: Outcome) -> None:
    report = outcome.report()
    print(report)
    print(f"mypy {outcome.mypy_seconds:.1f} s (cold, one file), dfgraph {outcome.dfgraph_seconds:.2f} s")
    if out := os.environ.get("DFGRAPH_CONFORMANCE_OUT"):
        Path(out).write_text(report + "\n")
    assert outcome.invalid == [], f"the generated module has invalid annotations on lines {outcome.invalid}"
    matrix = outcome.matrix()
    assert len(outcome.pairs) == PAIRS
    # Both verdicts occur often enough for the comparison to mean something.
    assert matrix["agree_accept"] > PAIRS // 5 and matrix["agree_reject"] > PAIRS // 5
    false_errors = outcome.disagreements("false_error")
    assert false_errors == [], f"dfgraph rejects what mypy accepts: {false_errors[:20]}"
    missed = outcome.disagreements("missed_error", None)
    undocumented = [
        pair
        for pair, why in zip(outcome.pairs, outcome.explained, strict=True)
        if pair in missed and why is None
    ]
    rejects = matrix["agree_reject"] + matrix["missed_error"]
    assert len(undocumented) <= rejects // 100, f"undocumented missed errors: {undocumented[:20]}"
    assert {why for why in outcome.explained if why} <= set(DOCUMENTED)


def test_every_documented_difference_is_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("### Type compatibility", 1)[1].split("\n## ", 1)[0]
    for name in DOCUMENTED:
        assert name in section, name


def test_disagreements_are_explained_by_the_mode_that_switches_them_off(outcome: Outcome) -> None:
    # A pair explained by the invariance difference really flips when invariance is honoured.
    explained = [
        pair
        for pair, why in zip(outcome.pairs, outcome.explained, strict=True)
        if why == "invariant parameters read covariantly"
    ]
    assert explained
    module = __import__(Path(outcome.module_path).stem)
    for i, pair in enumerate(outcome.pairs):
        if pair in explained[:50]:
            p = typing.get_type_hints(getattr(module, f"f_{i}"))["x"]
            c = typing.get_type_hints(getattr(module, f"s_{i}"))["y"]
            assert dftypes.is_assignable(p, c)
            assert dftypes.decide(p, c, dftypes.STRICT_INVARIANCE) is False


def test_the_readme_quotes_the_measured_matrix(outcome: Outcome) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    m = outcome.matrix()
    assert f"| dfgraph accepts | {m['agree_accept']} | {m['missed_error']} |" in readme
    assert f"| dfgraph rejects | {m['false_error']} | {m['agree_reject']} |" in readme
    agree = 100 * (m["agree_accept"] + m["agree_reject"]) / len(outcome.pairs)
    assert f"Agreement {agree:.1f}%" in readme
    assert f"all {m['missed_error']} missed errors are documented differences" in readme
