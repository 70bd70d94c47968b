"""The `stack` fixture of the end-to-end tests: one `LocalStack` from the `make_stack` factory
(tests/conftest.py), so it gets the same OpenAPI spec check at teardown as every other stack.

A module or test that needs other options says so with a marker, e.g.
`pytestmark = pytest.mark.stack(fixed_duration=10.0)`; the keywords go to `StackOptions`. A test
that needs several stacks, or one built mid-test, calls `make_stack(...)` itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from fakes.stack import LocalStack
from tests.e2e.stacks import StackFactory


def marker_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers("stack"))):
        options.update(marker.kwargs)  # the closest marker wins
    return options


@pytest.fixture
async def stack(
    request: pytest.FixtureRequest, make_stack: StackFactory
) -> AsyncIterator[LocalStack]:
    async with make_stack(**marker_options(request)) as running:
        yield running
