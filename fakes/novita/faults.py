"""Fault injection for the mock Novita: what can go wrong, where, and how often.

Two kinds of fault:

* **Request faults** replace the answer to the next matching HTTP request(s) with an error reply
  (403 bad key, 400 balance / illegal prompt, 429 with or without Retry-After, 500 JSON, 502/503
  gateway HTML, 404 task not found). They apply to an `Endpoint`.
* **Task faults** change how a submitted task turns out (FAILED with a reason, never finishing,
  an unknown status for a while, an NSFW flag, an expired image URL, an oversized image).

Both can be injected programmatically::

    mock.faults.inject(Fault.RATE_LIMIT, times=2, on=Endpoint.POLL, retry_after=1)
    mock.faults.inject(Fault.FAILED, reason="out of memory")      # the next submitted task fails

or written into a prompt so an end-to-end test (or a person in the demo) can trigger them through
Discord. Markers look like ``[mock:NAME]``, ``[mock:NAME@ENDPOINT]`` or ``[mock:NAME@ENDPOINT*N]``:

    "a red fox [mock:failed]"              the task ends TASK_STATUS_FAILED
    "a red fox [mock:server-error@poll*3]" the first 3 polls of this task answer 500
    "a red fox [mock:rate-limit*2]"        the first 2 submits of this exact prompt answer 429
    "a red fox [mock:balance]"             every submit of this prompt answers 400 balance

NAME is a `Fault` value (`bad-key`, `balance`, `illegal-prompt`, `rate-limit`,
`rate-limit-no-retry-after`, `server-error`, `bad-gateway`, `service-unavailable`,
`task-not-found`, `failed`, `never-finish`, `unknown-status`, `nsfw`, `expired-image`,
`oversized-image`, `oversized-image-chunked`). Without ``*N`` a permanent fault (bad key, balance,
illegal prompt) applies every time and a transient one once.
"""

from __future__ import annotations

import asyncio
import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final


class Endpoint(enum.Enum):
    SUBMIT = "submit"
    POLL = "poll"
    DOWNLOAD = "download"


class Fault(enum.Enum):
    # --- request faults -------------------------------------------------------------------------
    BAD_KEY = "bad-key"  # 403 INVALID_API_KEY
    BALANCE = "balance"  # 400 BILLING_BALANCE_NOT_ENOUGH
    ILLEGAL_PROMPT = "illegal-prompt"  # 400 ILLEGAL_PROMPT
    RATE_LIMIT = "rate-limit"  # 429 RATE_LIMIT_EXCEEDED + Retry-After
    RATE_LIMIT_NO_RETRY_AFTER = "rate-limit-no-retry-after"  # 429 without Retry-After
    SERVER_ERROR = "server-error"  # 500 CREATE_TASK_FAILED (submit) / GET_RESULT_FAILED (poll)
    BAD_GATEWAY = "bad-gateway"  # 502 HTML page from the gateway
    SERVICE_UNAVAILABLE = "service-unavailable"  # 503 HTML page ("traffic shaping")
    TASK_NOT_FOUND = "task-not-found"  # 404 TASK_NOT_FOUND
    # --- task faults ----------------------------------------------------------------------------
    FAILED = "failed"  # the task ends TASK_STATUS_FAILED with `reason`
    NEVER_FINISH = "never-finish"  # stays PROCESSING forever
    UNKNOWN_STATUS = "unknown-status"  # TASK_STATUS_UNKNOWN while running, then SUCCEED
    NSFW = "nsfw"  # SUCCEED, but flagged (has_nsfw_contents + nsfw_detection_result)
    EXPIRED_IMAGE = "expired-image"  # the image URL answers 403 with an S3-style XML body
    OVERSIZED_IMAGE = "oversized-image"  # the image is bigger than the cap (with Content-Length)
    OVERSIZED_IMAGE_CHUNKED = "oversized-image-chunked"  # ... streamed, no Content-Length

    @property
    def is_task_fault(self) -> bool:
        return self in TASK_FAULTS

    @property
    def is_permanent(self) -> bool:
        return self in _PERMANENT


TASK_FAULTS: Final = frozenset(
    {
        Fault.FAILED,
        Fault.NEVER_FINISH,
        Fault.UNKNOWN_STATUS,
        Fault.NSFW,
        Fault.EXPIRED_IMAGE,
        Fault.OVERSIZED_IMAGE,
        Fault.OVERSIZED_IMAGE_CHUNKED,
    }
)
_PERMANENT: Final = frozenset({Fault.BAD_KEY, Fault.BALANCE, Fault.ILLEGAL_PROMPT})

# Where a request fault lands when the caller does not say.
_DEFAULT_ENDPOINT: Final = {
    Fault.BAD_KEY: Endpoint.SUBMIT,
    Fault.BALANCE: Endpoint.SUBMIT,
    Fault.ILLEGAL_PROMPT: Endpoint.SUBMIT,
    Fault.RATE_LIMIT: Endpoint.SUBMIT,
    Fault.RATE_LIMIT_NO_RETRY_AFTER: Endpoint.SUBMIT,
    Fault.SERVER_ERROR: Endpoint.SUBMIT,
    Fault.BAD_GATEWAY: Endpoint.SUBMIT,
    Fault.SERVICE_UNAVAILABLE: Endpoint.SUBMIT,
    Fault.TASK_NOT_FOUND: Endpoint.POLL,
}

DEFAULT_FAILURE_REASON: Final = "task execution failed: the inference worker ran out of memory"

_MARKER: Final = re.compile(
    r"\[mock:(?P<name>[a-z0-9-]+)(?:@(?P<endpoint>submit|poll|download))?(?:\*(?P<times>\d+))?\]"
)


def default_endpoint(fault: Fault) -> Endpoint:
    if fault.is_task_fault:
        raise ValueError(f"{fault.value} is a task fault; it has no endpoint")
    return _DEFAULT_ENDPOINT[fault]


@dataclass
class RequestFault:
    """One armed request fault. `remaining` None means forever."""

    fault: Fault
    endpoint: Endpoint
    remaining: int | None
    task_id: str | None = None  # only requests about this task (polls/downloads) match
    retry_after: float | None = None  # seconds; None → the mock's configured default

    def matches(self, endpoint: Endpoint, task_id: str | None) -> bool:
        if self.endpoint is not endpoint or self.remaining == 0:
            return False
        return self.task_id is None or self.task_id == task_id

    def consume(self) -> None:
        if self.remaining is not None:
            self.remaining -= 1


@dataclass
class ArmedTaskFault:
    """A task fault waiting for the next `remaining` submitted tasks (None: every task)."""

    fault: Fault
    remaining: int | None
    reason: str | None = None
    oversized_bytes: int | None = None


@dataclass
class TaskFaultPlan:
    """How one task will misbehave; armed at submit from injections and prompt markers."""

    faults: set[Fault] = field(default_factory=set)
    failure_reason: str = DEFAULT_FAILURE_REASON
    oversized_bytes: int | None = None  # None → the mock's configured default


@dataclass(frozen=True)
class Marker:
    fault: Fault
    endpoint: Endpoint | None
    times: int | None


def parse_markers(prompt: str) -> list[Marker]:
    """Every `[mock:…]` marker in a prompt; unknown names are ignored (they are just text)."""
    markers: list[Marker] = []
    known = {fault.value: fault for fault in Fault}
    for match in _MARKER.finditer(prompt):
        fault = known.get(match.group("name"))
        if fault is None:
            continue
        endpoint = Endpoint(match.group("endpoint")) if match.group("endpoint") else None
        times = int(match.group("times")) if match.group("times") else None
        markers.append(Marker(fault, endpoint, times))
    return markers


class SubmitGate:
    """Holds every submit's answer once its task is created: Novita has the task (and bills
    it) while the bot still waits for the task id, until `release()`."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._arrived = asyncio.Condition()
        self.held = 0  # submits that reached the mock and wait for their answer

    async def hold(self) -> None:
        async with self._arrived:
            self.held += 1
            self._arrived.notify_all()
        await self._open.wait()

    async def wait_held(self, count: int) -> None:
        """Until `count` submits in all have reached the mock and wait for their answer."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: self.held >= count)

    def release(self) -> None:
        self._open.set()


class FaultBook:
    """The faults armed on a mock: request faults in injection order, task faults queued."""

    submit_gate: SubmitGate | None = None  # `hold_submits()`: answers wait behind it

    def hold_submits(self) -> SubmitGate:
        """From now on each submit creates its task, then waits for `release()` to answer."""
        self.submit_gate = SubmitGate()
        return self.submit_gate

    def __init__(self) -> None:
        self._request_faults: list[RequestFault] = []
        self._task_faults: list[ArmedTaskFault] = []
        # Submit faults from prompt markers count per (prompt, fault) so a retried submit of the
        # same prompt sees the fault the right number of times.
        self._marker_submit_hits: dict[tuple[str, Fault], int] = {}
        self.served: dict[Fault, int] = {}

    def inject(
        self,
        fault: Fault,
        *,
        times: int | None = 1,
        on: Endpoint | None = None,
        task_id: str | None = None,
        retry_after: float | None = None,
        reason: str | None = None,
        oversized_bytes: int | None = None,
    ) -> None:
        """Arm `fault` for the next `times` matching requests (request faults) or submitted tasks
        (task faults). `times=None` means forever (until `clear()`)."""
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for forever)")
        if fault.is_task_fault:
            self._task_faults.append(ArmedTaskFault(fault, times, reason, oversized_bytes))
            return
        endpoint = on or default_endpoint(fault)
        self._request_faults.append(RequestFault(fault, endpoint, times, task_id, retry_after))

    def clear(self) -> None:
        self._request_faults.clear()
        self._task_faults.clear()
        self._marker_submit_hits.clear()

    def take_request_fault(self, endpoint: Endpoint, task_id: str | None) -> RequestFault | None:
        """The first armed fault matching this request, consumed; None when the request is clean."""
        for armed in self._request_faults:
            if armed.matches(endpoint, task_id):
                armed.consume()
                self._request_faults = [f for f in self._request_faults if f.remaining != 0]
                return armed
        return None

    def take_task_plan(self) -> TaskFaultPlan:
        """The task faults that apply to the task being submitted now (each use counts once)."""
        plan = TaskFaultPlan()
        for armed in self._task_faults:
            plan.faults.add(armed.fault)
            if armed.reason:
                plan.failure_reason = armed.reason
            if armed.oversized_bytes is not None:
                plan.oversized_bytes = armed.oversized_bytes
            if armed.remaining is not None:
                armed.remaining -= 1
        self._task_faults = [armed for armed in self._task_faults if armed.remaining != 0]
        return plan

    def marker_submit_fault(self, prompt: str, markers: Iterable[Marker]) -> Fault | None:
        """The submit-time request fault a prompt's markers ask for, if any is still due."""
        for marker in markers:
            if marker.fault.is_task_fault:
                continue
            if (marker.endpoint or default_endpoint(marker.fault)) is not Endpoint.SUBMIT:
                continue
            times = marker.times or (None if marker.fault.is_permanent else 1)
            hits = self._marker_submit_hits.get((prompt, marker.fault), 0)
            if times is None or hits < times:
                self._marker_submit_hits[(prompt, marker.fault)] = hits + 1
                return marker.fault
        return None

    def arm_task_markers(self, task_id: str, markers: Iterable[Marker]) -> None:
        """Poll/download faults named in a prompt apply to that task's own requests."""
        for marker in markers:
            if marker.fault.is_task_fault:
                continue
            endpoint = marker.endpoint or default_endpoint(marker.fault)
            if endpoint is Endpoint.SUBMIT:
                continue
            times = marker.times or (None if marker.fault.is_permanent else 1)
            self._request_faults.append(RequestFault(marker.fault, endpoint, times, task_id))

    def record_served(self, fault: Fault) -> None:
        self.served[fault] = self.served.get(fault, 0) + 1
