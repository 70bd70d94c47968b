"""What a member reads in one message's box, as plain data: the wording builds cards, the edge
turns each into a Discord embed (`bot.interactions.transport.embeds.to_embed`).

Only what the bot's embeds use: a title, a description, a colour, fields, a footer line and a
picture from one of the message's attachments. Nothing is cut to Discord's limits here; the
wording keeps its texts short itself (see `bounded_lines` and `format_prompt`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Field:
    """A named value; inline fields sit side by side (up to three a row)."""

    name: str
    value: str
    inline: bool = True


@dataclass(frozen=True)
class Card:
    title: str
    description: str | None = None
    colour: int | None = None  # 0xRRGGBB; None: the client's default
    fields: tuple[Field, ...] = ()
    footer: str | None = None
    image: str | None = None  # the filename of an attachment of the same message

    def with_fields(self, *fields: Field) -> Card:
        """This card with `fields` added after its own."""
        return replace(self, fields=(*self.fields, *fields))

    def with_image(self, filename: str) -> Card:
        return replace(self, image=filename)
