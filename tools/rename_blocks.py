"""Rename the block library's import name from `blocks` to `dfgraph_blocks` everywhere in the repository.

    python tools/rename_blocks.py [--check]

The library stays in the folder blocks/ (dfgraph_blocks is a link to it), so folder paths such as
`blocks/examples.py` are left alone; only module references change: `import blocks`, `from blocks import`,
`from blocks.x import`, `blocks.examples:counter_two`, `python -m blocks.examples`. Idempotent: running it
again changes nothing. `--check` changes nothing and exits 1 when something is left to rename (CI).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NEW = "dfgraph_blocks"
SUBMODULES = ("examples", "diffusion", "diffusers_compat")
SUFFIXES = {".py", ".md", ".toml", ".cfg", ".ini", ".yaml", ".yml", ".txt", ""}  # "" : Makefile, .ci/*
SKIP = {"tools/rename_blocks.py", "CHANGELOG.md"}  # this script; the changelog records the old name

RULES = [
    # `import blocks` binds the name `blocks`: keep that name for the code that uses it
    (re.compile(r"^(\s*)import blocks\s*$", re.M), rf"\1import {NEW} as blocks"),
    (re.compile(r"^(\s*)from blocks(\.[\w.]+)? import ", re.M), rf"\1from {NEW}\2 import "),
    (re.compile(r"^(\s*)import blocks\.", re.M), rf"\1import {NEW}."),
    # a dotted module path (a target, `python -m`, prose): blocks.<known submodule>, not a path or attribute
    (re.compile(rf"(?<![\w./-])blocks(?=\.(?:{'|'.join(SUBMODULES)})\b)"), NEW),
]


def tracked_files() -> list[Path]:
    """The repository's tracked and untracked, not ignored, text files this rename may touch."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    files = []
    for name in sorted(set(out.split())):
        path = ROOT / name
        if name in SKIP or path.is_symlink() or not path.is_file() or path.suffix not in SUFFIXES:
            continue
        files.append(path)
    return files


def rename(text: str) -> str:
    """`text` with every module reference to `blocks` renamed."""
    for pattern, replacement in RULES:
        text = pattern.sub(replacement, text)
    return text


def main(argv: list[str]) -> int:
    """Rename in place (or, with --check, report); the exit status."""
    check = "--check" in argv
    changed = []
    for path in tracked_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        new = rename(text)
        if new != text:
            changed.append(path.relative_to(ROOT).as_posix())
            if not check:
                path.write_text(new, encoding="utf-8")
    verb = "to rename" if check else "renamed"
    print(f"{len(changed)} files {verb}" + "".join(f"\n  {name}" for name in changed))
    return 1 if check and changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
