"""What a person may ask for: image sizes and prompts, parsed and validated before any I/O."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final

from bot.text_folding import has_visible_character

MIN_SIDE: Final = 256
MAX_SIDE: Final = 1536
DEFAULT_SIZE_TEXT: Final = "1024*1024"

# Novita documents no prompt limit for Qwen-Image; its own Poe bot for the model refuses prompts
# over 2,000 characters, so we use that. It also keeps a prompt inside one embed description.
MAX_PROMPT_CHARS: Final = 2000

# People type "1024x768", "1024 X 768", "1024×768" or "1024*768"; the API wants "1024*768".
_SIZE_PATTERN: Final = re.compile(r"^\s*(\d{1,5})\s*[*xX×]\s*(\d{1,5})\s*$")


class InvalidInputError(ValueError):
    """The request itself is wrong; nothing was sent upstream. The edge words it."""


class SizeProblem(enum.StrEnum):
    SIDE_OUT_OF_RANGE = "side_out_of_range"  # each side must be MIN_SIDE..MAX_SIDE
    NOT_WIDTH_BY_HEIGHT = "not_width_by_height"  # not written as W*H


class PromptProblem(enum.StrEnum):
    EMPTY = "empty"
    TOO_LONG = "too_long"  # `length` characters, over MAX_PROMPT_CHARS
    NOTHING_VISIBLE = "nothing_visible"  # only invisible characters (zero-width spaces, …)


class InvalidSizeError(InvalidInputError):
    def __init__(self, text: str, problem: SizeProblem) -> None:
        self.text = text
        self.problem = problem
        super().__init__(f"invalid size {text!r}: {problem}")


class InvalidPromptError(InvalidInputError):
    def __init__(self, problem: PromptProblem, length: int = 0) -> None:
        self.problem = problem
        self.length = length
        super().__init__(f"invalid prompt: {problem} ({length} characters)")


@dataclass(frozen=True, order=True)
class ImageSize:
    width: int
    height: int

    def __post_init__(self) -> None:
        for side in (self.width, self.height):
            if not MIN_SIDE <= side <= MAX_SIDE:
                raise InvalidSizeError(
                    f"{self.width}*{self.height}", SizeProblem.SIDE_OUT_OF_RANGE
                )

    @property
    def wire(self) -> str:
        """The form Novita expects: `W*H`."""
        return f"{self.width}*{self.height}"

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def __str__(self) -> str:
        return f"{self.width}×{self.height}"


DEFAULT_SIZE: Final = ImageSize(1024, 1024)


def parse_size(text: str | None) -> ImageSize:
    """Parse `W*H`, `WxH`, `W×H` or `W X H`; empty means the default 1024*1024."""
    if text is None or not text.strip():
        return DEFAULT_SIZE
    match = _SIZE_PATTERN.match(text)
    if match is None:
        raise InvalidSizeError(text, SizeProblem.NOT_WIDTH_BY_HEIGHT)
    return ImageSize(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True)
class SizePreset:
    key: str
    label: str
    size: ImageSize


# Named shapes offered as slash-command choices; every one is valid for Qwen-Image.
SIZE_PRESETS: Final[tuple[SizePreset, ...]] = (
    SizePreset("square", "Square 1:1 (1024×1024)", ImageSize(1024, 1024)),
    SizePreset("portrait", "Portrait 2:3 (1024×1536)", ImageSize(1024, 1536)),
    SizePreset("landscape", "Landscape 3:2 (1536×1024)", ImageSize(1536, 1024)),
    SizePreset("tall", "Tall 9:16 (864×1536)", ImageSize(864, 1536)),
    SizePreset("wide", "Wide 16:9 (1536×864)", ImageSize(1536, 864)),
    SizePreset("poster", "Poster 3:4 (1152×1536)", ImageSize(1152, 1536)),
    SizePreset("small", "Small square (512×512, fastest)", ImageSize(512, 512)),
    SizePreset("large", "Large square (1536×1536)", ImageSize(1536, 1536)),
)


def resolve_size(text: str | None) -> ImageSize:
    """A preset key (`portrait`) or a free-form size (`768x1024`)."""
    if text is not None:
        key = text.strip().lower()
        for preset in SIZE_PRESETS:
            if key == preset.key:
                return preset.size
    return parse_size(text)


def validate_prompt(text: str | None) -> str:
    """Strip the prompt and check it is neither empty, nor over `MAX_PROMPT_CHARS`, nor made
    only of characters nobody can see (`bot.text_folding`): such a prompt is never sent."""
    prompt = (text or "").strip()
    if not prompt:
        raise InvalidPromptError(PromptProblem.EMPTY)
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidPromptError(PromptProblem.TOO_LONG, len(prompt))
    if not has_visible_character(prompt):
        raise InvalidPromptError(PromptProblem.NOTHING_VISIBLE, len(prompt))
    return prompt
