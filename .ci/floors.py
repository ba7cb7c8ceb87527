"""Print one `name==floor` pin per line for the wheel's core dependencies and the extras named.

    python .ci/floors.py dist/dfgraph_engine-0.1.0-py3-none-any.whl testing

Every dependency must have a `>=` floor: a dependency without one fails here, so none goes untested.
"""

from __future__ import annotations

import re
import sys
import zipfile
from email.parser import Parser


def requirements(wheel: str) -> list[str]:
    """The Requires-Dist lines of the wheel's METADATA."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(name).decode())
    return metadata.get_all("Requires-Dist") or []


def floors(wheel: str, extras: set[str]) -> list[str]:
    """`name==floor` for each core requirement and each requirement of the given extras."""
    pins = []
    for line in requirements(wheel):
        spec, _, marker = line.partition(";")
        extra = re.search(r"""extra\s*==\s*["']([^"']+)["']""", marker)
        if extra and extra.group(1) not in extras:
            continue
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*\(?>=\s*([^,\s)]+)\)?\s*", spec)
        if match is None:
            raise SystemExit(f"no single >= floor in {line!r}")
        pins.append(f"{match.group(1)}=={match.group(2)}")
    return pins


if __name__ == "__main__":
    print("\n".join(floors(sys.argv[1], set(sys.argv[2:]))))
