"""The example graphs: the Modular Diffusers guide's counter loops, the guided loop, the progress bar."""

from __future__ import annotations

import pytest

import dfgraph as df
from dfgraph_blocks import examples


def test_counter_with_one_block_gives_ten() -> None:
    assert df.check(examples.counter_one).ok
    assert df.compile(examples.counter_one)(num_steps=10, x=0, output="x") == 10


def test_counter_with_two_blocks_gives_twenty() -> None:
    assert df.check(examples.counter_two).ok
    assert df.compile(examples.counter_two)(num_steps=10, x=0, output="x") == 20


def test_guided_loop_matches_a_hand_written_loop() -> None:
    prog = df.compile(examples.guided_loop)
    value, scale = 1.0, 2.0
    for t in [5.0, 4.0, 3.0, 2.0, 1.0]:
        scaled = value / (1.0 + t)
        cond, uncond = scaled * 0.9, scaled * 0.5
        value = value - 0.1 * (uncond + scale * (cond - uncond))
    out = prog(num_steps=5, value=1.0, cond_weight=0.9, uncond_weight=0.5)
    assert out["value"] == pytest.approx(value, rel=1e-12)
    assert out["timesteps"] == [5.0, 4.0, 3.0, 2.0, 1.0]


def test_miswired_example_is_rejected_with_every_error() -> None:
    with pytest.raises(df.WiringError) as info:
        df.compile(examples.miswired)
    assert sorted(info.value.report.codes()) == ["DF003", "DF101", "DF102"]


def test_demo_main_runs(capsys: pytest.CaptureFixture[str]) -> None:
    examples.main()
    out = capsys.readouterr().out
    assert "counter_one(num_steps=10, x=0) -> 10" in out
    assert "counter_two(num_steps=10, x=0) -> 20" in out
    assert "error[DF101]" in out


def test_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    loop = df.Loop(examples.add_one, times="n", progress=True, name="counted")
    prog = df.compile(loop)
    assert ".iteration_end(" in prog.source  # the bar is a ProgressBar hook (dfgraph.hooks)
    assert prog(n=25, x=0, output="x") == 25
    err = capsys.readouterr().err
    assert "counted" in err and "25/25" in err
