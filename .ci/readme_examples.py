"""Run the README's examples against whatever `dfgraph` is importable (CI: the installed wheel).

    python .ci/readme_examples.py README.md

An example is a ```python block at the start of a line whose first line is an import: a complete
program. Other python blocks are excerpts (the generated code, a class outline) and indented ones belong
to a list item. The examples run in order in one namespace (later ones use earlier names, as a reader
would), and every `test_*` function they define is called.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any


def examples(readme: str) -> list[str]:
    """The README's runnable python blocks, in order."""
    blocks = re.findall(r"^```python\n(.*?)^```", readme, flags=re.S | re.M)
    return [b for b in blocks if re.match(r"(import|from) \w", b)]


def run(readme: Path) -> int:
    """Run every example; the number run."""
    namespace: dict[str, Any] = {"__name__": "readme"}
    found = examples(readme.read_text(encoding="utf-8"))
    for number, code in enumerate(found, 1):
        start = time.perf_counter()
        defined = set(namespace)
        exec(compile(code, f"{readme}:example {number}", "exec"), namespace)
        for name in sorted(set(namespace) - defined):
            if name.startswith("test_") and callable(namespace[name]):
                namespace[name]()
        first = code.splitlines()[0]
        print(
            f"README example {number} ({first}): ok in {time.perf_counter() - start:.1f} s", file=sys.stderr
        )
    return len(found)


if __name__ == "__main__":
    count = run(Path(sys.argv[1]))
    if count == 0:
        raise SystemExit("no README examples found")
