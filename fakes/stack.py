"""The whole bot on loopback: mock Novita + fake Discord + real services + the real bot.

Shared by the end-to-end tests, `python -m bot demo` and benchmarks, so they all exercise the
same code path production runs (`ImagineBot` → cogs → `GenerationService` → `JobEngine` →
`NovitaClient` over real sockets; limits in a real database).

    async with LocalStack(StackOptions()) as stack:  # durations × STACK_TIME_SCALE
        interaction = await stack.imagine(stack.alice, "a poster that says HELLO", "512*512")
        message = await stack.wait_result(interaction)
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from yarl import URL

from bot.app.bot import ImagineBot
from bot.app.composition import Services
from bot.config import Secret, SecretUrl, Settings
from bot.wording import presentation as ui
from fakes.discord.server import (
    FakeAttachment,
    FakeChannel,
    FakeDiscord,
    FakeDiscordConfig,
    FakeGuild,
    FakeInteraction,
    FakeMember,
    FakeMessage,
    FakeRole,
    run_bot_against,
)
from fakes.novita.server import MockNovita, MockNovitaConfig

MANAGE_MESSAGES = 1 << 13
MANAGE_GUILD = 1 << 5

# Discord allows 5 edits of a message per 5 s; the bot's default progress interval is 2 s. The
# stack shortens that interval to 0.05 s, so it shortens the fake's window by the same factor
# (40×): loopback jobs keep Discord's proportions instead of tripping a 5-second bucket.
STACK_EDIT_RATE_WINDOW = 5.0 / 40

# Mock Novita's durations in every loopback run unless a test asks otherwise: 20 s at 1024²
# takes 0.2 s, so a job shows progress and still ends in a blink.
STACK_TIME_SCALE = 0.01


@dataclass
class StackOptions:
    time_scale: float = STACK_TIME_SCALE
    fixed_duration: float | None = None  # seconds, before time_scale; None = realistic spread
    queue_probability: float = 0.0
    database_url: str | None = None  # default: a fresh SQLite file in a temp folder
    settings: dict[str, Any] = field(default_factory=dict)  # Settings overrides
    fake_discord: FakeDiscordConfig = field(
        default_factory=lambda: FakeDiscordConfig(edit_rate_window=STACK_EDIT_RATE_WINDOW)
    )
    draw_prompt: bool = True
    # The mock serves images from 127.0.0.1, which the download guard refuses unless trusted.
    # Hosts in settings["trusted_image_hosts"] are trusted in addition.
    trust_mock_images: bool = True
    # Which `image` forms of an edit the mock reads ({"base64"}: a Novita that fetches no URL).
    accept_image_forms: frozenset[str] = frozenset({"url", "base64"})


def stack_settings(
    mock_base_url: str,
    api_key: str,
    database_url: str,
    *,
    trust_mock_images: bool = True,
    **overrides: Any,
) -> Settings:
    """Settings scaled for loopback runs: short polls and edits, generous limits."""
    trusted = tuple(overrides.pop("trusted_image_hosts", ()))
    if trust_mock_images:
        trusted = (host_port(mock_base_url), *trusted)
    base: dict[str, Any] = dict(
        novita_api_key=Secret(api_key),
        discord_token=Secret("fake-bot-token"),
        novita_base_url=mock_base_url,
        database_url=SecretUrl(database_url),
        poll_min_interval=0.01,
        poll_max_interval=0.1,
        job_deadline=30.0,
        request_timeout=10.0,
        max_submits_per_minute=0,
        progress_edit_interval=0.05,
        user_generations_per_window=0,
        user_max_concurrent_jobs=0,
        user_daily_quota=0,
        trusted_image_hosts=trusted,
    )
    base.update(overrides)
    return Settings(**base)


def host_port(base_url: str) -> str:
    """`http://127.0.0.1:8089/x` → `127.0.0.1:8089`, as `TRUSTED_IMAGE_HOSTS` lists hosts."""
    url = URL(base_url)
    return f"{url.raw_host}:{url.port}"


class LocalStack:
    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self._exit = contextlib.AsyncExitStack()
        self.mock: MockNovita
        self.fake: FakeDiscord
        self.settings: Settings
        self.services: Services
        self.bot: ImagineBot
        self.guild: FakeGuild
        self.channel: FakeChannel
        self.nsfw_channel: FakeChannel
        self.mod_role: FakeRole
        self.alice: FakeMember
        self.bob: FakeMember
        self.mod: FakeMember
        self.admin: FakeMember

    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await self._exit.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._exit.aclose()

    async def _start(self) -> None:
        options = self.options
        # The fake Discord first: the mock fetches images to edit from its attachment URLs.
        self.fake = FakeDiscord(options.fake_discord)
        await self.fake.start()
        self._exit.push_async_callback(self.fake.stop)
        discord_host = host_port(self.fake.rest_base)
        self.mock = MockNovita(
            MockNovitaConfig(
                time_scale=options.time_scale,
                fixed_duration=options.fixed_duration,
                queue_probability=options.queue_probability,
                draw_prompt=options.draw_prompt,
                accept_image_forms=options.accept_image_forms,
                edit_fetch_hosts=(discord_host,),
            )
        )
        await self.mock.start()
        self._exit.push_async_callback(self.mock.stop)
        self.guild = self.fake.add_guild("Art Club")
        self.channel = self.fake.add_channel(self.guild, "art")
        self.nsfw_channel = self.fake.add_channel(self.guild, "after-dark", nsfw=True)
        self.mod_role = self.fake.add_role(self.guild, "Mods", permissions=MANAGE_MESSAGES)
        self.alice = self.fake.add_member(self.guild, "alice")
        self.bob = self.fake.add_member(self.guild, "bob")
        self.mod = self.fake.add_member(self.guild, "mod", roles=[self.mod_role])
        self.admin = self.fake.add_member(
            self.guild, "admin", permissions=MANAGE_GUILD | MANAGE_MESSAGES
        )

        database_url = options.database_url
        if database_url is None:
            folder = Path(self._exit.enter_context(tempfile.TemporaryDirectory()))
            database_url = f"sqlite+aiosqlite:///{folder / 'imagine.db'}"
        settings = dict(options.settings)
        # The bot re-downloads an image to edit from the fake's attachments (base64 form).
        settings["trusted_image_hosts"] = (*settings.get("trusted_image_hosts", ()), discord_host)
        self.settings = stack_settings(
            self.mock.base_url, self.mock.config.api_key, database_url,
            trust_mock_images=options.trust_mock_images, **settings,
        )
        self.services = await Services.create(self.settings)
        self._exit.push_async_callback(self.services.close)
        await self.start_bot()

    async def start_bot(self) -> ImagineBot:
        """(Re)start the bot process on the same services, e.g. to test buttons after a restart."""
        self.bot = ImagineBot(self.settings, services=self.services)
        await self._exit.enter_async_context(run_bot_against(self.fake, self.bot))
        # The fake's edit window is scaled down; the bot's progress reserve follows it.
        self.bot.displays.message_edit_window = self.options.fake_discord.edit_rate_window
        return self.bot

    async def restart_bot(self) -> ImagineBot:
        await self.bot.close()
        return await self.start_bot()

    def with_settings(self, **overrides: Any) -> Settings:
        return dataclasses.replace(self.settings, **overrides)

    # ---- playing members -----------------------------------------------------------------------

    async def imagine(
        self,
        member: FakeMember,
        prompt: str,
        size: str | None = None,
        *,
        channel: FakeChannel | None = None,
        attachment_size_limit: int | None = None,
    ) -> FakeInteraction:
        options: dict[str, Any] = {"prompt": prompt}
        if size is not None:
            options["size"] = size
        return await self.fake.invoke_slash(
            channel or self.channel,
            member,
            "imagine",
            options,
            attachment_size_limit=attachment_size_limit,
        )

    async def imagine_edit(
        self,
        member: FakeMember,
        image: FakeAttachment,
        instruction: str,
        *,
        channel: FakeChannel | None = None,
    ) -> FakeInteraction:
        """`/imagine-edit` with `image` (from `stack.fake.upload(...)`) attached."""
        return await self.fake.invoke_slash(
            channel or self.channel, member, "imagine-edit",
            {"image": image, "instruction": instruction},
        )

    async def wait_result(
        self, interaction: FakeInteraction, timeout: float = 20.0  # noqa: ASYNC109
    ) -> FakeMessage:
        """Wait until the job's message shows how it ended (image, failure, cancel, notice)."""

        def finished(message: FakeMessage) -> bool:
            title = message.embeds[0].get("title", "") if message.embeds else ""
            return message.deleted or title in ui.FINAL_TITLES

        return await interaction.wait_original(finished, timeout=timeout)

    async def click(self, message: FakeMessage, label: str, member: FakeMember) -> FakeInteraction:
        """Click the button with this label on `message`."""
        for component in message.walk_components():
            if component.get("label") == label:
                return await self.fake.click(message, component["custom_id"], member)
        raise LookupError(f"no button {label!r} on message {message.id}")
