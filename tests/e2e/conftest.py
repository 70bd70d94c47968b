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
from sqlalchemy import make_url

from fakes.db_proxy import TcpProxy
from fakes.stack import LocalStack
from tests.e2e.crash_support import fresh_postgres_database
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


@pytest.fixture
async def proxied_postgres() -> AsyncIterator[tuple[TcpProxy, str]]:
    """A fresh PostgreSQL database, reached through a proxy in front of the server."""
    async with fresh_postgres_database() as direct_url:
        url = make_url(direct_url)
        async with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
            proxied = url.set(host="127.0.0.1", port=proxy.port)
            yield proxy, proxied.render_as_string(hide_password=False)
