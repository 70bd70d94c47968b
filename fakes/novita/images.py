"""Real JPEGs for the mock Novita: a soft gradient with the prompt written on it.

The picture exists so a person watching a demo can see that *their* prompt went through and came
back at the size they asked for. It is deterministic (colours come from a hash of the prompt),
so tests can compare bytes. Rendering a 1536×1536 image takes tens of milliseconds: callers run
`render_prompt_jpeg` in a worker thread.
"""

from __future__ import annotations

import hashlib
import io
import random
import textwrap
from functools import lru_cache
from typing import Final

from PIL import Image, ImageDraw, ImageFont, ImageOps

_FONT_CANDIDATES: Final = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "Arial.ttf", "arial.ttf")
_PANEL_MARGIN_RATIO: Final = 0.06
_MAX_PROMPT_LINES: Final = 14

FontType = ImageFont.FreeTypeFont | ImageFont.ImageFont


@lru_cache(maxsize=64)
def _font(size: int) -> FontType:
    """A scalable font: a common system TrueType one, else Pillow's bundled default."""
    for name in _FONT_CANDIDATES:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def _palette(prompt: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Two pleasant, prompt-dependent colours (muted, mid-dark so white text stays legible)."""
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()

    def colour(offset: int) -> tuple[int, int, int]:
        r, g, b = digest[offset : offset + 3]
        return (40 + r % 120, 40 + g % 120, 60 + b % 130)

    return colour(0), colour(3)


def _gradient(width: int, height: int, prompt: str) -> Image.Image:
    """A diagonal two-colour gradient, built small and scaled up (cheap at any size)."""
    start, end = _palette(prompt)
    ramp = Image.linear_gradient("L").rotate(45, resample=Image.Resampling.BICUBIC, expand=False)
    # Rotating leaves black corners; crop the middle where the ramp is clean.
    ramp = ramp.crop((48, 48, 208, 208))
    coloured = ImageOps.colorize(ramp, black=start, white=end)
    return coloured.resize((width, height), Image.Resampling.BILINEAR)


def _wrap(text: str, font: FontType, max_width: int) -> list[str]:
    """Greedy word wrap by measured pixel width; very long words are hard-split."""
    average = max(1.0, font.getlength("abcdefghijklmnopqrstuvwxyz") / 26)
    columns = max(8, int(max_width / average))
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        wrapped = textwrap.wrap(paragraph, width=columns, break_long_words=True) or [""]
        for line in wrapped:
            while font.getlength(line) > max_width and len(line) > 1:
                cut = max(1, int(len(line) * max_width / font.getlength(line)))
                lines.append(line[:cut])
                line = line[cut:]
            lines.append(line)
    return lines


def render_prompt_image(prompt: str, width: int, height: int, caption: str = "") -> Image.Image:
    """The picture itself (RGB, exactly `width`×`height`)."""
    image = _gradient(width, height, prompt)
    draw = ImageDraw.Draw(image, "RGBA")
    margin = int(min(width, height) * _PANEL_MARGIN_RATIO)
    panel_width = width - 2 * margin
    text_size = max(12, min(width, height) // 18)
    font = _font(text_size)
    lines = _wrap(prompt, font, panel_width - 2 * margin)
    line_height = int(text_size * 1.3)
    fits = max(1, min(_MAX_PROMPT_LINES, (height - 3 * margin) // line_height))
    if len(lines) > fits:
        lines = [*lines[: fits - 1], lines[fits - 1].rstrip() + " …"]
    block_height = line_height * len(lines)
    top = max(margin, (height - block_height) // 2 - margin // 2)
    bottom = min(height - margin, top + block_height + margin)
    draw.rounded_rectangle(
        (margin, top - margin // 2, width - margin, bottom),
        radius=max(4, margin // 2),
        fill=(0, 0, 0, 110),
    )
    y = top
    for line in lines:
        draw.text((2 * margin, y), line, font=font, fill=(255, 255, 255, 255))
        y += line_height
    if caption:
        small = _font(max(10, text_size // 2))
        draw.text(
            (margin, height - margin),
            caption,
            font=small,
            fill=(255, 255, 255, 200),
            anchor="ls",
        )
    return image


def render_prompt_jpeg(
    prompt: str, width: int, height: int, caption: str = "", quality: int = 85
) -> bytes:
    """Encode `render_prompt_image` as baseline JPEG bytes."""
    buffer = io.BytesIO()
    render_prompt_image(prompt, width, height, caption).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


# Real Qwen-Image JPEGs are photographic and weigh far more than a flat gradient: about 340 KB at
# 1024² and 760 KB at 1536² (benchmarks pad to these so transfers and memory are realistic).
REALISTIC_JPEG_BYTES: Final[tuple[tuple[int, int], ...]] = (
    (512 * 512, 100_000),
    (1024 * 1024, 340_000),
    (1536 * 1536, 760_000),
)
_COMMENT_MAX: Final = 65_533  # payload of one JPEG COM segment (its length field counts itself)


def target_jpeg_bytes(width: int, height: int, anchors: tuple[tuple[int, int], ...]) -> int:
    """Target file size for a picture, interpolated (and extrapolated) by pixel count."""
    points = sorted(anchors)
    if len(points) == 1:
        return points[0][1]
    pixels = width * height
    index = 0
    while index < len(points) - 2 and pixels > points[index + 1][0]:
        index += 1
    (p0, b0), (p1, b1) = points[index], points[index + 1]
    return max(0, int(b0 + (b1 - b0) * (pixels - p0) / (p1 - p0)))


def pad_jpeg(jpeg: bytes, target: int, seed: int = 0) -> bytes:
    """`jpeg` grown to about `target` bytes with COM segments of incompressible bytes.

    The segments sit right after the SOI marker, so the file stays a valid JPEG that decodes to
    the same picture; nothing downstream can shrink it by recompressing the padding.
    """
    missing = target - len(jpeg)
    if missing <= 4 or jpeg[:2] != b"\xff\xd8":
        return jpeg
    noise = random.Random(seed).randbytes(missing)
    segments: list[bytes] = []
    offset = 0
    while missing - offset > 4:
        size = min(_COMMENT_MAX, missing - offset - 4)
        segments.append(b"\xff\xfe" + (size + 2).to_bytes(2, "big") + noise[offset : offset + size])
        offset += size + 4
    return jpeg[:2] + b"".join(segments) + jpeg[2:]


def render_sized_jpeg(
    prompt: str, width: int, height: int, caption: str, quality: int, target: int | None
) -> bytes:
    """`render_prompt_jpeg`, padded to `target` bytes when one is given."""
    jpeg = render_prompt_jpeg(prompt, width, height, caption, quality)
    return jpeg if target is None else pad_jpeg(jpeg, target, seed=width * 10_000 + height)
