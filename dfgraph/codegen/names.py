"""Identifiers of the generated source: one allocator for locals and globals, and the text helpers that
put user-given names into source only as identifiers made here or as string literals."""

from __future__ import annotations

import builtins
import keyword
import re
import unicodedata

from dfgraph.ir import CallOp, LoopOp

# Names the generated code uses for itself; the allocator never hands them to values or blocks.
HELPERS = (
    "_range",
    "_enumerate",
    "_isinstance",
    "_iter",
    "_tqdm",
    "_cat",
    "_rt",
    "_Unset",
    "_MISSING",
    "_bad_input",
    "_no_value",
    "_OUTPUTS",
    "self",
    "args",
    "output",
    "unknown",
    "exc",
    # the only builtins the generated code names; no identifier of ours may shadow them
    "str",
    "Exception",
    "__builtins__",  # exec reads the builtins from this global
    "__debug__",  # cannot be assigned
)
# Globals never take a builtin's name unless they hold that very builtin (int is int); locals other than
# inputs neither (inputs keep theirs, so the caller's keywords bind straight to parameters: the
# generated code names no builtin but those above).
_BUILTINS = frozenset(dir(builtins))


class Names:
    """Allocates unique, readable identifiers for locals and globals alike (so none shadows another).

    Any string may be a base (a block, port or loop name): the identifier made from it is one Python
    reads exactly as written (NFKC-normal, not a keyword), so user names reach the source only as
    identifiers made here or as string literals (`repr`)."""

    def __init__(self) -> None:
        self.used: set[str] = set(HELPERS)
        self.next_suffix: dict[str, int] = {}  # per base name, so 10,000 versions of 'x' stay linear

    def new(self, base: str, *, builtin_ok: bool = False) -> str:
        """A fresh identifier like `base`; a builtin's name only when `builtin_ok` (an input parameter)."""
        ident = identifier(base)
        candidate, k = ident, self.next_suffix.get(ident, 1)
        while candidate in self.used or (candidate in _BUILTINS and not builtin_ok):
            candidate, k = f"{ident}_{k}", k + 1
        self.next_suffix[ident] = k
        self.used.add(candidate)
        return candidate


def identifier(base: str) -> str:
    """An identifier that Python reads as written (NFKC-normal, not a keyword), close to `base`."""
    text = unicodedata.normalize("NFKC", base)
    ident = "".join(c if c == "_" or f"_{c}".isidentifier() else "_" for c in text)
    if unicodedata.normalize("NFKC", ident) != ident:  # a rare sequence NFKC recomposes: keep ASCII only
        ident = re.sub(r"[^0-9A-Za-z_]", "_", ident)
    if not ident:
        ident = "v"
    if not ident.isidentifier():  # starts with a digit or another continue-only character
        ident = f"_{ident}"
    if keyword.iskeyword(ident) or keyword.issoftkeyword(ident):
        ident = f"{ident}_"
    return ident


def block_name(op: CallOp) -> str:
    """The block's name as the base of its identifier (the path's last segment if it has none)."""
    try:
        name = getattr(op.block, "name", None)
    except Exception:  # a name property that raises: check reports nothing for a Graph node's name
        name = None
    return name if isinstance(name, str) else op.path.rsplit("/", 1)[-1]


def literal(text: str) -> str:
    """A string literal of `text`: str's own repr, which a str subclass cannot override."""
    return str.__repr__(text)


def comment(text: str) -> str:
    """Text for a `#` comment: as is when printable (no line break can end the comment), else a literal."""
    text = str.__str__(text)
    return text if text.isprintable() else literal(text)


def plain_keyword(name: str) -> bool:
    """True when `name=` in a call passes exactly the keyword `name` (else it goes through **{...})."""
    return (
        name.isidentifier()
        and not keyword.iskeyword(name)
        and name != "__debug__"
        and unicodedata.normalize("NFKC", name) == name
    )


# A comment names its block's path up to this long; past it, the root and the innermost segments.
COMMENT_PATH = 100


def short(path: str) -> str:
    """A path for a comment of the generated source: in full up to COMMENT_PATH characters, else cut in
    the middle, so the source of blocks nested 20,000 deep does not grow with the square of the depth
    (errors still name the full path, from the line table)."""
    if len(path) <= COMMENT_PATH:
        return path
    root = path.split("/", 1)[0]
    tail = path[-max(COMMENT_PATH - len(root) - 5, 20) :]
    return f"{root}/.../{tail.split('/', 1)[-1] if '/' in tail else tail}"


def tuple_text(items: list[str]) -> str:
    """`a,` for one item, `a, b` for several: the targets or elements of a tuple."""
    return f"{items[0]}," if len(items) == 1 else ", ".join(items)


def class_name(plain: type | tuple[type, ...]) -> str:
    """A readable global name for the class(es) of an inline isinstance: int, float_or_int."""
    if isinstance(plain, tuple):
        return "_or_".join(c.__name__ for c in plain)
    return plain.__name__


def describe_loop(op: LoopOp) -> str:
    """The loop's comment: how it iterates and what it carries."""
    loop = op.loop
    how = f"times={loop.times}" if loop.times is not None else f"over={loop.over}"
    carried = ", ".join(c.name for c in op.carried) or "nothing"
    until = f", until {loop.until}" if loop.until is not None else ""
    return f"{how}, carries {carried}{until}"
