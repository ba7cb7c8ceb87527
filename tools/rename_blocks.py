"""Rename the block library's import name from `blocks` to `dfgraph_blocks` everywhere in the repository.

    python tools/rename_blocks.py [--check]

The library stays in the folder blocks/ (dfgraph_blocks is a link to it), so folder paths such as
`blocks/examples.py` are left alone; only module references change: `import blocks`, `from blocks import`,
`from blocks.x import`, `blocks.examples:counter_two`, `python -m blocks.examples`. Idempotent: running it
again changes nothing. `--check` changes nothing and exits 1 when something is left to rename (CI).

The longer name can push a line past the 110 columns of ruff's E501: a renamed docstring or comment line
that does is wrapped at its last space that fits, and then ruff (when the repository's .venv or PATH has
it) sorts the imports and formats the Python files it changed.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NEW = "dfgraph_blocks"
LINE_LENGTH = 110  # [tool.ruff] line-length
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


def string_lines(text: str) -> set[int]:
    """The numbers (1-based) of lines inside a string literal that spans several lines (docstrings)."""
    lines: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.STRING and token.end[0] > token.start[0]:
                lines.update(range(token.start[0], token.end[0] + 1))
    except (tokenize.TokenError, SyntaxError):
        pass
    return lines


def wrap_long(old: str, new: str, width: int = LINE_LENGTH) -> str:
    """`new` with each renamed docstring or comment line longer than `width` wrapped at its last space."""
    before = set(old.splitlines())
    prose = string_lines(new)
    out = []
    for number, line in enumerate(new.splitlines(keepends=True), 1):
        body = line.rstrip("\n")
        stripped = body.lstrip()
        indent = body[: len(body) - len(stripped)]
        comment = stripped.startswith("#")
        # before an option in brackets (a usage line), else at the last space that fits
        cut = body.rfind(" [", len(indent) + 1, width + 1)
        cut = cut if cut >= 0 else body.rfind(" ", len(indent) + 1, width + 1)
        if len(body) <= width or body in before or not (comment or number in prose) or cut < 0:
            out.append(line)
            continue
        rest = body[cut + 1 :]
        out.append(body[:cut] + "\n")
        out.append(f"{indent}{'# ' if comment else ''}{rest}" + line[len(body) :])
    return "".join(out)


def ruff(paths: list[Path]) -> None:
    """Sort imports and format the changed Python files with ruff, if it is installed."""
    exe = ROOT / ".venv" / "bin" / "ruff"
    command = str(exe) if exe.exists() else shutil.which("ruff")
    files = [str(p) for p in paths if p.suffix == ".py"]
    if command is None or not files:
        return
    subprocess.run([command, "check", "--quiet", "--fix", "--select", "I", *files], cwd=ROOT, check=False)
    subprocess.run([command, "format", "--quiet", *files], cwd=ROOT, check=False)


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
                path.write_text(wrap_long(text, new) if path.suffix == ".py" else new, encoding="utf-8")
    if changed and not check:
        ruff([ROOT / name for name in changed])
    verb = "to rename" if check else "renamed"
    print(f"{len(changed)} files {verb}" + "".join(f"\n  {name}" for name in changed))
    return 1 if check and changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
