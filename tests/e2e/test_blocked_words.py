"""End to end: a moderator's worst-case blocked words cannot stall the bot or be slipped past.

A moderator fills the server's list with the allowed maximum of the terms that made the old
backtracking matcher slow; other members' `/imagine` with the longest prompts are still
acknowledged (the fake refuses a late acknowledgement) and admitted, and admission matched every
prompt in its worker thread, never inside its transaction. Invisible characters neither hide a
blocked word (nor make a prompt: tests/e2e/test_imagine.py). Real bot, fake Discord, mock
Novita, SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest

from bot.imaging import MAX_PROMPT_CHARS
from bot.limits.admin import MAX_BLOCKED_TERMS
from bot.limits.blocked_terms import BlockedTerms
from bot.wording import presentation as ui
from fakes.stack import LocalStack
from tests.e2e.support import private_refusal, title
from tests.e2e.test_admin import admin, jobs_settled
from tests.unit.limits.test_blocked_terms import worst_case_terms

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120), pytest.mark.stack(fixed_duration=2.0)]

DEFERRED = 5


class AdmissionWrites:
    """Stands in for admission's database: knows when admission's transaction is open."""

    def __init__(self, database: Any) -> None:
        self._database = database
        self.open = 0
        self.opened = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._database, name)

    @contextlib.asynccontextmanager
    async def write(self, lock_keys: Iterable[str] = ()) -> AsyncIterator[Any]:
        async with self._database.write(lock_keys) as conn:
            self.open += 1
            self.opened += 1
            try:
                yield conn
            finally:
                self.open -= 1


async def test_worst_case_terms_leave_other_members_acknowledged_and_admitted(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    admissions = stack.services.admissions
    writes = AdmissionWrites(admissions._db)
    monkeypatch.setattr(admissions, "_db", writes)
    loop_thread = threading.get_ident()
    find = BlockedTerms.find
    matches: list[tuple[bool, bool]] = []  # each: (on the loop's thread, transaction open)

    def watched_find(self: BlockedTerms, prompt: str) -> str | None:
        matches.append((threading.get_ident() == loop_thread, writes.open > 0))
        return find(self, prompt)

    monkeypatch.setattr(BlockedTerms, "find", watched_find)

    # The moderator fills the list: all but the last straight through the admin service the
    # command uses, the last and one too many with the command itself.
    *most, last = worst_case_terms()
    admin_service = stack.services.guild_admin
    for term in most:
        await admin_service.add_word(stack.guild.id, stack.admin.id, term)
    added = await admin(stack, "words add", {"word": last})
    assert added.content == f"Blocked `{last.replace('*', chr(92) + '*')}`."  # `*` shown as typed
    refused = await admin(stack, "words add", {"word": "dragon"})
    assert str(MAX_BLOCKED_TERMS) in refused.content

    # Members arrive together with the longest hostile prompts (no term matches them).
    members = [stack.fake.add_member(stack.guild, f"member{n}") for n in range(12)]
    hostile = ["a" * MAX_PROMPT_CHARS, ("a" * 199 + " ") * 10, "a*" * (MAX_PROMPT_CHARS // 2)]
    interactions = await asyncio.gather(
        *(stack.imagine(m, hostile[n % 3][:MAX_PROMPT_CHARS], "512*512")
          for n, m in enumerate(members))
    )
    for interaction in interactions:
        assert await interaction.wait_acknowledged() == DEFERRED  # in time, or the fake refuses
    results = await asyncio.gather(*(stack.wait_result(i) for i in interactions))
    assert all(title(message) == ui.RESULT_TITLE for message in results)
    assert all(len(message.attachments) == 1 for message in results)
    await jobs_settled(stack)

    # A worst-case term itself is still refused.
    term_itself = last.replace("*", "aaa")
    reply = await private_refusal(await stack.imagine(stack.alice, f"so {term_itself}"))
    assert reply.content.startswith("Sorry, your prompt contains a blocked word (")
    assert last.rsplit("*", 1)[1] in reply.content

    # Every prompt was matched off the event loop and outside admission's transaction.
    assert len(matches) >= len(members) + 1
    assert admissions.screened_in_thread >= len(members) + 1
    assert writes.opened >= 1  # admission's transactions went through the watch
    assert not any(on_loop for on_loop, _ in matches)
    assert not any(in_transaction for _, in_transaction in matches)


@pytest.mark.parametrize("hidden", ["\u200b", "\u00ad", "\u2060", "\u200d", "\ufeff"])
async def test_invisible_characters_hide_no_blocked_word(stack: LocalStack, hidden: str) -> None:
    await admin(stack, "words add", {"word": "dragon"})
    sneaky = f"a red dr{hidden}ag{hidden}on over hills"
    reply = await private_refusal(await stack.imagine(stack.alice, sneaky))
    assert reply.content == "Sorry, your prompt contains a blocked word (dragon)."

