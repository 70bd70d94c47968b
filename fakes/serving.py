"""Running a fake as a process of its own until Ctrl+C or SIGTERM (`python -m fakes.discord`,
`python -m bot mock-novita`)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


def serve_forever(server: Coroutine[Any, Any, None], host: str, port: int) -> int:
    """Run `server` to its end; exit code 1 with one line when the port cannot be bound."""
    try:
        asyncio.run(server)
    except KeyboardInterrupt:
        pass
    except OSError as error:
        print(f"cannot listen on {host}:{port}: {error.strerror or error}")
        return 1
    return 0
