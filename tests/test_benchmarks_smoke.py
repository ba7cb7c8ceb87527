"""The overhead benchmark runs at smoke size, and its variants compute the same thing (no timing here)."""

from __future__ import annotations

import pytest

from benchmarks import overhead


def test_counter_variants_agree() -> None:
    variants = overhead.counter_case(37)
    assert {name: fn() for name, fn in variants.items()} == {"hand-written": 74, "dfgraph": 74}


def test_sequence_variants_run_and_report(capsys: pytest.CaptureFixture[str]) -> None:
    variants = overhead.sequence_case(blocks=20, calls=3)
    overhead.report("smoke", variants, repeats=2)
    out = capsys.readouterr().out
    assert "hand-written" in out and "dfgraph (run = prog.__call__)" in out and "ratio" in out
