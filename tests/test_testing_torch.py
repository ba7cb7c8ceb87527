"""The tests of dfgraph.testing that draw inputs for a block taking a torch tensor (split from
test_testing.py, so that module runs without torch)."""

from typing import Any

import pytest
import torch
from hypothesis import find, given
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from jaxtyping import Float
from test_testing import SETTINGS

import dfgraph as df
from dfgraph.testing import inputs_for


@df.block(outputs="y")
def _tensor(t: Float[torch.Tensor, "b c"]) -> int:
    return 0


@df.block(outputs="y")
def _tensor_optional(x: int, t: Float[torch.Tensor, "b c"] | None = None) -> int:
    return x


def test_inputs_for_asks_for_a_strategy_it_cannot_derive() -> None:
    with pytest.raises(InvalidArgument, match="inputs_for\\(\\.\\.\\., t=\\.\\.\\.\\)"):
        inputs_for(_tensor)
    assert find(inputs_for(_tensor, t=st.just(torch.zeros(2, 3))), lambda d: True)["t"].shape == (2, 3)


@SETTINGS
@given(inputs_for(_tensor_optional))
def test_inputs_for_leaves_out_an_optional_input_it_cannot_derive(inputs: dict[str, Any]) -> None:
    assert inputs.get("t") is None
    df.compile(_tensor_optional)(**inputs)
