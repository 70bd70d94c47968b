"""How prompts and blocked terms are folded before they are compared: one function for both.

`fold` removes what a reader cannot see (format characters such as zero-width spaces, soft
hyphens, word joiners and byte-order marks, every other default-ignorable code point such as
variation selectors, and control characters), applies NFKC (look-alike letters such as
fullwidth ones become plain) and case folding, and collapses every run of whitespace into one
space. A word with an invisible character inside it then reads as the word itself, so it cannot
slip past a blocked word, and a prompt made only of invisible characters folds to nothing.
"""

from __future__ import annotations

import unicodedata
from typing import Final

# Unicode's Default_Ignorable_Code_Point ranges that are not of category Cf (those are removed
# by category): the combining grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian
# and other variation selectors, and the reserved default-ignorable blocks. From
# DerivedCoreProperties.txt (Unicode 15); the property is stable by Unicode's policy.
_IGNORABLE_RANGES: Final = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
_INVISIBLE_CATEGORIES: Final = frozenset({"Cf", "Cc"})


def is_invisible(char: str) -> bool:
    """A format, control or default-ignorable character (whitespace is not: it separates)."""
    if char.isspace():
        return False
    if unicodedata.category(char) in _INVISIBLE_CATEGORIES:
        return True
    code = ord(char)
    return any(low <= code <= high for low, high in _IGNORABLE_RANGES)


# Format and control characters exist only in planes 0, 1 and 14 (tests check every plane), so
# the table is built from those at import (a few tens of milliseconds), and `str.translate` then
# drops every invisible character in one C-level pass.
_PLANES_WITH_INVISIBLES: Final = ((0x0000, 0x1FFFF), (0xE0000, 0xEFFFF))
_DROP_INVISIBLE: Final[dict[int, None]] = {
    code: None
    for low, high in _PLANES_WITH_INVISIBLES
    for code in range(low, high + 1)
    if is_invisible(chr(code))
}


def _drop_invisible(text: str) -> str:
    return text.translate(_DROP_INVISIBLE)


def fold(text: str) -> str:
    """The form prompts and terms are compared in; `fold(fold(x)) == fold(x)`.

    Invisible characters go first, so NFKC composes a letter with an accent that one separated
    from it; NFKC runs again after case folding, which can decompose.
    """
    folded = unicodedata.normalize("NFKC", _drop_invisible(text)).casefold()
    folded = _drop_invisible(unicodedata.normalize("NFKC", folded))
    return " ".join(folded.split())


def has_visible_character(text: str) -> bool:
    """Whether anything of the text is left to read once folded."""
    return bool(fold(text))
