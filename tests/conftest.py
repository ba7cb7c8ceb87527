"""Hypothesis profiles: CI runs a fixed, reproducible set of examples (HYPOTHESIS_PROFILE=ci, set by
.ci/run); elsewhere each run draws new ones, so local runs keep searching for new counterexamples."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
