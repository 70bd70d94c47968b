"""Every fake Discord an end-to-end test talks to, checked against Discord's OpenAPI spec.

`StackFactory` builds the in-process stacks (`fakes.stack.LocalStack`, options as keywords) and
`DiscordSpecWatch` remembers each fake Discord a test started — a stack's, or a bare one that a
bot process connects to — and what a fake Discord in a process of its own reported (its control
report's `spec_violations`, `fakes.discord.control`), so the fixtures in tests/conftest.py can
assert at teardown that no request the bot sent broke the spec (`fakes.discord.spec_check`),
whatever the test did.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from fakes.discord.server import FakeDiscord, FakeDiscordConfig
from fakes.stack import LocalStack, StackOptions

Stack = TypeVar("Stack", bound=LocalStack)
FakeDiscordFactory = Callable[..., FakeDiscord]  # `make_fake_discord(config=None)`


class DiscordSpecWatch:
    """The fake Discords of one test (started or not); `violations` reads them all at the end."""

    def __init__(self) -> None:
        self._fakes: list[FakeDiscord] = []
        self._stacks: list[LocalStack] = []
        self._reported: list[str] = []

    def fake(self, config: FakeDiscordConfig | None = None) -> FakeDiscord:
        """A new fake Discord (start it with `async with`), watched."""
        fake = FakeDiscord(config)
        self._fakes.append(fake)
        return fake

    def stack(self, stack: Stack) -> Stack:
        self._stacks.append(stack)
        return stack

    def reported(self, source: str, count: int, first: list[str]) -> None:
        """What a fake Discord in another process counted (`count`) and printed (`first`, its
        first few) of the spec violations it saw; `source` says which process."""
        self._reported += [f"{source}: {violation}" for violation in first]
        if count > len(first):
            self._reported.append(f"{source}: … and {count - len(first)} more")

    def watched(self) -> list[FakeDiscord]:
        # A stack makes its fake Discord when it starts; one that never started made none.
        from_stacks = [stack.fake for stack in self._stacks if hasattr(stack, "fake")]
        return [*self._fakes, *from_stacks]

    def violations(self) -> list[str]:
        found = [str(violation) for fake in self.watched() for violation in fake.spec_violations]
        return [*found, *self._reported]

    def assert_none(self) -> None:
        found = "\n".join(self.violations())
        assert not found, f"the bot broke Discord's OpenAPI spec:\n{found}"


class StackFactory:
    """`make_stack(fixed_duration=10.0, settings={...})` → an unstarted, watched `LocalStack`
    (`async with make_stack(...) as stack:`); `make_stack(RolesStack, ...)` for a subclass."""

    def __init__(self, watch: DiscordSpecWatch) -> None:
        self._watch = watch

    @overload
    def __call__(self, **options: Any) -> LocalStack: ...

    @overload
    def __call__(self, stack_class: type[Stack], /, **options: Any) -> Stack: ...

    def __call__(self, stack_class: type[LocalStack] = LocalStack, /, **options: Any) -> LocalStack:
        return self._watch.stack(stack_class(StackOptions(**options)))
