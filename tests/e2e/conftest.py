"""The one `stack` fixture every end-to-end test uses: the real bot on loopback against the
fake Discord and the mock Novita (`fakes.stack.LocalStack`), time scaled ×0.01.

A module or test that needs other options says so with a marker, e.g.
`pytestmark = pytest.mark.stack(fixed_duration=10.0)`; the keywords go to `StackOptions`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from fakes.stack import LocalStack, StackOptions

E2E_TIME_SCALE = 0.01


def stack_options(request: pytest.FixtureRequest) -> StackOptions:
    options: dict[str, Any] = {"time_scale": E2E_TIME_SCALE}
    for marker in reversed(list(request.node.iter_markers("stack"))):
        options.update(marker.kwargs)  # the closest marker wins
    return StackOptions(**options)


@pytest.fixture
async def stack(request: pytest.FixtureRequest) -> AsyncIterator[LocalStack]:
    async with LocalStack(stack_options(request)) as running:
        yield running
    # Every request the bot sent must follow Discord's published spec (fakes.discord.spec_check).
    violations = "\n".join(map(str, running.fake.spec_violations))
    assert not violations, f"the bot broke Discord's OpenAPI spec:\n{violations}"
