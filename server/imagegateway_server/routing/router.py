"""Walks a compiled plan: fallback, weighted pick, retries and per-attempt timeouts under a deadline.

The router knows providers only through ``ProviderAdapter`` and credentials only through a
``CredentialResolver``; it never builds HTTP requests itself.

A watched request (``RouteContext.listener`` set) hears each attempt start and fail and each
fallback move on; its attempts report jobs queued or running and partial images through
``UpstreamTarget.events`` (``providers/kit/progress.py``). Every attempt gets a ``JobProgress``
(``UpstreamTarget.jobs``) whose polls and wait go into its record, watched or not. Once a partial
image has reached the caller, a failing target ends the request instead of falling back (the
caller has seen that target's images): the attempt is logged with ``stream_events``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from imagegateway_server.domain.credentials import ResolvedCredentials
from imagegateway_server.domain.errors import (
    AllTargetsFailed,
    DeadlineExceeded,
    ErrorKind,
    GatewayError,
    InvalidArgument,
    ProviderError,
)
from imagegateway_server.domain.image_inputs import Operation
from imagegateway_server.domain.job_progress import JobProgress
from imagegateway_server.domain.progress import ProgressEvent, ProgressKind, StreamListener
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.domain.result import AttemptRecord, ModelSubstitution, RoutedResult
from imagegateway_server.providers.kit.interface import ProviderAdapter, UpstreamTarget
from imagegateway_server.providers.kit.progress import AttemptEvents
from imagegateway_server.providers.kit.retired_models import Succession
from imagegateway_server.routing.breakers import outcome_of
from imagegateway_server.routing.model_successors import REMEMBERED, RETIRED, ModelSuccessors, substitution
from imagegateway_server.routing.plan import Group, Leaf, Node
from imagegateway_server.state.breakers import Breakers, Outcome, Permit, TargetIdentity

log = logging.getLogger(__name__)

MAX_RETRY_AFTER_WITHOUT_DEADLINE = 60.0


class CredentialResolver(Protocol):
    """Turns a leaf's virtual key or inline credential into an account; raises ProviderError/GatewayError."""

    async def resolve(self, leaf: Leaf) -> ResolvedCredentials: ...


@dataclasses.dataclass(frozen=True, slots=True)
class RouteContext:
    """Per-request facts the router needs: the trace id, the deadline (loop time), caller headers and
    the caller's metadata (what conditional routing reads as ``metadata.*``)."""

    trace_id: str
    deadline: float | None = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Headers the gateway itself sends on every upstream call (a child W3C traceparent); they win
    # over forwarded caller headers of the same name.
    upstream_headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Checks a virtual key's limits before a target that uses it is called (core.limits.Ticket).
    target_gate: TargetGate | None = None
    # Where the attempts go as they are made, so the caller can log them if the request is cancelled.
    trail: AttemptTrail | None = None
    # A watching caller's ear for progress and partial images (None: nobody listens, nothing is built).
    listener: StreamListener | None = None
    # A streamed request may be served by a target that cannot stream, as one final answer.
    stream_complete: bool = False


class TargetGate(Protocol):
    """Admits one call through a virtual key, or raises a GatewayError (its limit is reached)."""

    async def admit(self, virtual_key_id: str, provider: str, request: ImageRequest) -> None: ...


class AttemptTrail:
    """One request's attempts as the router makes them, and the upstream call in flight.

    A cancelled request ends with CancelledError rather than a result, so its owner keeps the trail
    to log what was tried: the finished attempts, then the call cut short (``cut_short``).
    """

    __slots__ = ("_in_flight", "finished")

    def __init__(self) -> None:
        self.finished: list[AttemptRecord] = []
        # The call under way (its record without an outcome), when it started (time.monotonic())
        # and its jobs' progress (polls so far).
        self._in_flight: tuple[AttemptRecord, float, JobProgress | None] | None = None

    def begin(self, call: AttemptRecord, started: float, jobs: JobProgress | None = None) -> None:
        self._in_flight = (call, started, jobs)

    def add(self, attempt: AttemptRecord) -> None:
        """A finished attempt; it ends the call in flight, whose outcome it is."""
        self._in_flight = None
        self.finished.append(attempt)

    def cut_short(self, reason: GatewayError) -> tuple[AttemptRecord, ...]:
        """The finished attempts, then the call in flight (if any) recorded as ended now by ``reason``."""
        if self._in_flight is None:
            return tuple(self.finished)
        call, started, jobs = self._in_flight
        elapsed = time.monotonic() - started
        cancelled = dataclasses.replace(
            call,
            status_code=reason.status_code,
            latency_ms=int(elapsed * 1000),
            error_kind=reason.kind,
            error=reason.message,
            cancelled=True,
            seconds=elapsed,
            poll_count=jobs.polls if jobs is not None else 0,
            poll_seconds=jobs.wait_seconds() if jobs is not None else 0.0,
        )
        return (*self.finished, cancelled)


@dataclasses.dataclass
class _Run:
    request: ImageRequest
    ctx: RouteContext
    trail: AttemptTrail
    first_leaf: Leaf | None = None
    # Targets skipped because their circuit was open, and whether the walk has fallen back on one.
    skipped: list[_Candidate] = dataclasses.field(default_factory=list)
    bypassing: bool = False

    @property
    def attempts(self) -> list[AttemptRecord]:
        return self.trail.finished


@dataclasses.dataclass(slots=True)
class _Candidate:
    """A leaf resolved to the account, adapter and request it would call."""

    leaf: Leaf
    creds: ResolvedCredentials
    adapter: ProviderAdapter
    request: ImageRequest
    identity: TargetIdentity | None  # None when breakers are off
    retry_at: float = 0.0  # when its open circuit's cool-down ends (set when it is skipped)
    # Set once the request went to a retired model's successor (``routing.model_successors``).
    substitution: ModelSubstitution | None = None
    # The parameters rewritten for the successor, as ``param=old->new``.
    successor_notes: tuple[str, ...] = ()


class _LeafFailed(Exception):
    def __init__(self, error: ProviderError | GatewayError, retry_count: int = 0) -> None:
        super().__init__(error.message)
        self.error = error
        # Retries spent on the target; -1 when the config's retries were all used up (Portkey's form).
        self.retry_count = retry_count


class _CircuitSkipped(_LeafFailed):
    """The target was not called because its circuit is open; the walk always moves on."""


class _Unsupported(_LeafFailed):
    """The target was not called because it cannot do the request's operation (an edit, a variation);
    the walk always moves on, whatever the fallback's ``on_status_codes``."""


# Skips that never called the target: a fallback moves on from them whatever its status codes.
_SKIPS = (_CircuitSkipped, _Unsupported)


class _StreamCut(Exception):
    """A target failed after the caller had image events from it: the walk ends here, no fallback."""

    def __init__(self, error: ProviderError | GatewayError) -> None:
        super().__init__(error.message)
        self.error = error


STREAM_SWITCH_HINT = "x-imagegw-stream-fallback: complete (gRPC: stream_fallback STREAM_FALLBACK_COMPLETE)"


def _leaves(node: Node) -> list[Leaf]:
    if isinstance(node, Leaf):
        return [node]
    return [leaf for child in node.children for leaf in _leaves(child)]


# How much earlier than ours an adapter's timer of the same length may fire.
_TIMER_SLACK_SECONDS = 0.01


class Router:
    """Executes plans. One instance serves every request; it holds no per-request state."""

    def __init__(
        self,
        adapters: Callable[[str], ProviderAdapter],
        credentials: CredentialResolver,
        *,
        default_timeout: float = 120.0,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        breakers: Breakers | None = None,
        successors: ModelSuccessors | None = None,
    ) -> None:
        self._successors = successors
        self._adapters = adapters
        self._credentials = credentials
        self._default_timeout = default_timeout
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._breakers = breakers

    async def run(self, plan: Node, request: ImageRequest, ctx: RouteContext) -> RoutedResult:
        """Serves ``request`` by ``plan``; raises AllTargetsFailed or DeadlineExceeded."""
        run = _Run(request, ctx, ctx.trail if ctx.trail is not None else AttemptTrail())
        try:
            return await self._walk(plan, run)
        except _StreamCut as cut:
            raise AllTargetsFailed(cut.error, run.attempts) from None
        except _LeafFailed as failed:
            raise AllTargetsFailed(failed.error, run.attempts, retry_count=failed.retry_count) from None
        except DeadlineExceeded as expired:
            raise AllTargetsFailed(expired, run.attempts) from None

    def refuse_unstreamable(self, plan: Node, request: ImageRequest) -> None:
        """Refuses, before any call, a streamed request that no target of ``plan`` can stream.

        Only targets whose provider the plan names are judged (a virtual key's provider is known only
        once it is opened); a plan with any other target is let through and judged per attempt.
        """
        refused: list[str] = []
        for leaf in _leaves(plan):
            if not leaf.provider:
                return
            try:
                adapter = self._adapters(leaf.provider)
            except (ProviderError, GatewayError):
                return
            model = leaf.override_params.get("model") or request.model or adapter.default_model()
            if _streams(adapter, str(model)):
                return
            refused.append(f"{model!s} on {leaf.provider}")
        raise InvalidArgument(
            f"is not supported by {', '.join(dict.fromkeys(refused))}: no target streams partial images; "
            f"send {STREAM_SWITCH_HINT} to accept the image as one completed event",
            param="stream",
            code="unsupported_value",
        )

    async def _walk(self, plan: Node, run: _Run) -> RoutedResult:
        try:
            return await self._node(plan, run)
        except _CircuitSkipped:
            # The walk ended on a skip, so every target it had left was open: rather than refuse the
            # caller, call the skipped target whose cool-down ends first (Portkey, too, bypasses
            # breakers when all targets are open).
            run.bypassing = True
            return await self._call(min(run.skipped, key=lambda c: c.retry_at), run)

    async def _node(self, node: Node, run: _Run, fallback: Group | None = None) -> RoutedResult:
        """Runs ``node``; ``fallback`` is the nearest enclosing fallback group, if any."""
        if isinstance(node, Leaf):
            return await self._leaf(node, run)
        if node.routes is not None:  # conditional: the first matching rule's target, else the default
            chosen = node.children[node.routes.choose(run.ctx.metadata, run.request)]
            return await self._node(chosen, run, fallback)
        if node.mode == "loadbalance":
            return await self._loadbalance(node, run, fallback)
        if node.mode == "single":
            return await self._node(node.children[0], run, fallback)
        return await self._fallback(node, run)

    async def _loadbalance(self, group: Group, run: _Run, fallback: Group | None) -> RoutedResult:
        order = self._weighted_order(group)
        if fallback is None:
            # Nothing above asked for fallback: one weighted pick, whose failure is the group's (as Portkey).
            # A pick whose circuit is open was not tried, so the next in weighted order is picked instead.
            for child in order[:-1]:
                with contextlib.suppress(*_SKIPS):
                    return await self._node(child, run, None)
            return await self._node(order[-1], run, None)
        # Inside a fallback, a failed pick moves on to the group's other targets in weighted order
        # before the enclosing fallback does, under that fallback's on_status_codes.
        last: _LeafFailed | None = None
        for child in order:
            if last is not None:
                self._moving_on(run, last, child)
            try:
                return await self._node(child, run, fallback)
            except _LeafFailed as failed:
                last = failed
                if (
                    fallback.on_status_codes is not None
                    and failed.error.status_code not in fallback.on_status_codes
                    and not isinstance(failed, _SKIPS)
                ):
                    raise
        assert last is not None  # a compiled loadbalance group has a target with positive weight
        raise last

    def _weighted_order(self, group: Group) -> list[Node]:
        # A weighted shuffle without replacement: each target draws an exponential "clock" at the rate
        # of its weight and the earliest goes first, so the first is a plain weighted pick
        # (P = w / sum of w) and zero weights are never drawn. No sum of weights, so no overflow.
        clocks = sorted((self._rng.expovariate(weight), i) for i, weight in enumerate(group.weights) if weight > 0)
        return [group.children[i] for _, i in clocks]

    async def _fallback(self, group: Group, run: _Run) -> RoutedResult:
        last: _LeafFailed | None = None
        for child in group.children:
            if last is not None:
                self._moving_on(run, last, child)
            try:
                return await self._node(child, run, group)
            except _LeafFailed as failed:
                last = failed
                if (
                    group.on_status_codes is not None
                    and failed.error.status_code not in group.on_status_codes
                    and not isinstance(failed, _SKIPS)
                ):
                    raise
        assert last is not None  # a compiled group always has children
        raise last

    @staticmethod
    def _moving_on(run: _Run, failed: _LeafFailed, successor: Node) -> None:
        """Tells a watching caller that the walk falls back from the last attempt's target to ``successor``."""
        listener = run.ctx.listener
        if listener is None:
            return
        last = run.attempts[-1] if run.attempts else None
        listener.progress(
            ProgressEvent(
                kind=ProgressKind.FALLBACK,
                target=last.target if last else "",
                provider=last.provider if last else "",
                model=last.model if last else "",
                error_kind=failed.error.kind,
                error=failed.error.message,
                next_target=successor.path,
            )
        )

    def _remaining(self, run: _Run) -> float | None:
        if run.ctx.deadline is None:
            return None
        return run.ctx.deadline - asyncio.get_running_loop().time()

    async def _leaf(self, leaf: Leaf, run: _Run) -> RoutedResult:
        if run.first_leaf is None:
            run.first_leaf = leaf
        request = run.request.with_overrides(leaf.override_params)
        started = time.monotonic()
        try:
            creds = await self._credentials.resolve(leaf)
            adapter = self._adapters(creds.provider)
        except (ProviderError, GatewayError) as exc:
            run.trail.add(attempt_record(leaf, leaf.provider, request.model or "", 0, started=started, error=exc))
            raise _LeafFailed(exc) from None
        if not request.model:
            request = dataclasses.replace(request, model=adapter.default_model())
        if request.operation is not Operation.GENERATE and request.operation not in adapter.operations(
            request.model or ""
        ):
            unsupported = ProviderError(
                ErrorKind.BAD_REQUEST,
                f"{creds.provider} cannot make {request.operation.noun} with model {request.model!r}",
                provider=creds.provider,
                status_code=400,
                code="unsupported_operation",
                param="model",
            )
            run.trail.add(attempt_record(leaf, creds.provider, request.model or "", 0, error=unsupported))
            raise _Unsupported(unsupported)
        if leaf.virtual_key and run.ctx.target_gate is not None:
            try:
                await run.ctx.target_gate.admit(leaf.virtual_key, creds.provider, request)
            except GatewayError as exc:  # over its limit: not called, a failure like a 429, so a fallback moves on
                run.trail.add(attempt_record(leaf, creds.provider, request.model or "", 0, started=started, error=exc))
                raise _LeafFailed(exc) from None
        identity = (
            TargetIdentity.of(creds.provider, creds.base_url, creds.credential, request.model or "")
            if self._breakers is not None
            else None
        )
        candidate = _Candidate(leaf, creds, adapter, request, identity)
        successors = self._successors_for(candidate)
        if successors is not None:
            succession = successors.remembered(creds.provider, self._account(candidate), request)
            if succession is not None and self._can_serve(candidate, succession.request):
                self._switch(candidate, succession, REMEMBERED)
        return await self._call(candidate, run)

    def _successors_for(self, candidate: _Candidate) -> ModelSuccessors | None:
        """The successor table, when a retired model may be served by its successor on this target
        (it has not opted out, is not strict, and has not switched already); else None."""
        if (
            candidate.substitution is not None
            or not candidate.leaf.model_successor
            or candidate.leaf.strict
            or candidate.request.strict
        ):
            return None
        return self._successors

    @staticmethod
    def _can_serve(candidate: _Candidate, request: ImageRequest) -> bool:
        """Whether the target's adapter can do ``request``'s operation with its model (a retired model's
        successor may not: dall-e-2 made variations, its successor does not)."""
        operation = request.operation
        return operation is Operation.GENERATE or operation in candidate.adapter.operations(request.model or "")

    @staticmethod
    def _account(candidate: _Candidate) -> TargetIdentity:
        """The account and model a "model is gone" answer is remembered for."""
        creds = candidate.creds
        return TargetIdentity.of(
            creds.provider, creds.base_url, creds.credential, (candidate.request.model or "").lower()
        )

    def _switch(self, candidate: _Candidate, succession: Succession, reason: str) -> None:
        """Points ``candidate`` at the successor: its request, and its breaker identity (the model's own)."""
        request = succession.request
        candidate.request = request
        candidate.substitution = substitution(succession, reason)
        candidate.successor_notes = (f"model={candidate.substitution.describe()}", *succession.notes)
        if candidate.identity is not None:
            creds = candidate.creds
            candidate.identity = TargetIdentity.of(
                creds.provider, creds.base_url, creds.credential, request.model or ""
            )

    async def _call(self, candidate: _Candidate, run: _Run) -> RoutedResult:
        """Calls one target until it serves, fails for good, or its retries run out."""
        leaf = candidate.leaf
        headers = {name: run.ctx.headers[name] for name in leaf.forward_headers if name in run.ctx.headers}
        headers.update(run.ctx.upstream_headers)
        retry = leaf.retry
        attempts = 1 + (retry.attempts if retry else 0)
        for index in range(attempts):
            outcome = await self._attempt(candidate, run, index, headers)
            successors = self._successors_for(candidate) if isinstance(outcome, ProviderError) else None
            if successors is not None and isinstance(outcome, ProviderError):
                account = self._account(candidate)
                succession = successors.after_failure(candidate.creds.provider, account, candidate.request, outcome)
                if succession is not None and self._can_serve(candidate, succession.request):
                    # The model is gone: the one retry goes to its successor at once, whatever the retry policy.
                    self._switch(candidate, succession, RETIRED)
                    outcome = await self._attempt(candidate, run, index, headers)
            if isinstance(outcome, RoutedResult):
                return outcome
            error = outcome
            if retry is None or error.status_code not in retry.on_status_codes:
                raise _LeafFailed(error, retry_count=index)
            if index + 1 >= attempts:
                raise _LeafFailed(error, retry_count=-1 if retry.attempts else index)
            wait = self._retry_wait(error, retry.use_retry_after_header, index)
            remaining = self._remaining(run)
            if remaining is not None and wait >= remaining:
                raise _LeafFailed(error, retry_count=index)  # the wait does not fit the deadline: move on now
            await self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(
        self, candidate: _Candidate, run: _Run, index: int, headers: Mapping[str, str]
    ) -> RoutedResult | ProviderError:
        """One upstream call: the breaker's permit, the timeout under the deadline, the classified outcome.

        Returns the result, or the call's failure (recorded on the trail and told to the breaker).
        Raises DeadlineExceeded when the caller's deadline ran out, _CircuitSkipped when the target's
        circuit is open, and CancelledError when the caller left (the call stays in flight on the trail).
        """
        leaf, creds, adapter, request = candidate.leaf, candidate.creds, candidate.adapter, candidate.request
        model = request.model or ""
        remaining = self._remaining(run)
        if remaining is not None and remaining <= 0:
            raise DeadlineExceeded("the request deadline expired before a target answered")
        if request.stream:
            # Judged before the breaker is asked: a target skipped for this says nothing of its health.
            refusal = self._stream_mode(candidate, run)
            if refusal is not None:
                run.trail.add(attempt_record(leaf, creds.provider, model, index, error=refusal))
                return refusal
            request = candidate.request  # without ``stream`` when the target answers in one piece
        permit = await self._admit(candidate, run, index)
        per_attempt = (leaf.request_timeout_ms / 1000.0) if leaf.request_timeout_ms else self._default_timeout
        timeout = per_attempt if remaining is None else min(per_attempt, remaining)
        # When the caller's remaining time is the shorter bound, a timeout is the caller's deadline
        # (504), not the target's request_timeout (408); deciding here needs no clock tolerance.
        cut_by_deadline = remaining is not None and remaining <= per_attempt
        listener = run.ctx.listener
        # An asynchronous provider counts its polls here, for the attempt's record.
        jobs = JobProgress()
        events: AttemptEvents | None = None
        if listener is not None:
            events = AttemptEvents(listener, target=leaf.path, provider=creds.provider, model=model, retry_index=index)
            listener.progress(
                ProgressEvent(
                    kind=ProgressKind.ATTEMPT_STARTED,
                    target=leaf.path,
                    provider=creds.provider,
                    model=model,
                    retry_index=index,
                )
            )
        target = UpstreamTarget(
            credential=creds.credential,
            base_url=creds.base_url,
            timeout=timeout,
            headers=headers,
            trace_id=run.ctx.trace_id,
            strict=leaf.strict or request.strict,
            jobs=jobs,
            events=events,
        )
        started = time.monotonic()
        run.trail.begin(attempt_record(leaf, creds.provider, model, index), started, jobs)
        try:
            try:
                async with asyncio.timeout(timeout):
                    result = await adapter.generate(request, target)
            except ProviderError as exc:
                # The adapter bounds its attempt by the same ``timeout`` with a timer of its own, which
                # may fire a moment before ours (uvloop's timers have millisecond resolution); when the
                # attempt used up its bound and that bound was the caller's deadline, it is the
                # deadline (504), not the target's timeout (408). A connect timeout comes earlier.
                used_up = time.monotonic() - started >= timeout - _TIMER_SLACK_SECONDS
                if cut_by_deadline and exc.kind is ErrorKind.TIMEOUT and used_up:
                    raise TimeoutError from None
                raise
        except TimeoutError:
            if cut_by_deadline:
                self._settle(permit, Outcome.NEUTRAL)  # the caller's deadline, not the target's fault
                run.trail.add(
                    attempt_record(
                        leaf,
                        creds.provider,
                        model,
                        index,
                        started=started,
                        error=DeadlineExceeded("the request deadline expired"),
                        jobs=jobs,
                        stream_events=listener.images_sent if listener is not None else 0,
                    )
                )
                raise DeadlineExceeded("the request deadline expired before a target answered") from None
            error = ProviderError(
                ErrorKind.TIMEOUT, f"no answer within {timeout:.1f} s", provider=creds.provider, status_code=408
            )
        except ProviderError as exc:
            error = exc
        except asyncio.CancelledError:
            # The caller left; frees a half-open probe slot. The call stays in flight on the trail,
            # which the request's owner logs as cancelled.
            self._settle(permit, Outcome.NEUTRAL)
            raise
        except Exception as exc:  # an adapter bug must not take the chain down
            log.exception("adapter %s failed unexpectedly", creds.provider)
            error = ProviderError(
                ErrorKind.INTERNAL,
                f"gateway fault in the {creds.provider} adapter: {type(exc).__name__}",
                provider=creds.provider,
                status_code=500,
            )
        else:
            self._settle(permit, Outcome.SUCCESS)
            if candidate.successor_notes:
                result = dataclasses.replace(result, translations=(*candidate.successor_notes, *result.translations))
            run.trail.add(
                attempt_record(
                    leaf,
                    creds.provider,
                    result.model or model,
                    index,
                    started=started,
                    status_code=200,
                    translations=result.translations,
                    jobs=jobs,
                )
            )
            return RoutedResult(
                result=result,
                leaf=leaf,
                provider=creds.provider,
                attempts=tuple(run.attempts),
                retry_count=index,
                fallback_used=leaf is not run.first_leaf,
                substitution=candidate.substitution,
            )
        self._settle(permit, outcome_of(error.kind))
        sent = listener.images_sent if listener is not None else 0
        record = attempt_record(
            leaf, creds.provider, model, index, started=started, error=error, jobs=jobs, stream_events=sent
        )
        run.trail.add(record)
        if listener is not None:
            listener.progress(
                ProgressEvent(
                    kind=ProgressKind.ATTEMPT_FAILED,
                    target=leaf.path,
                    provider=creds.provider,
                    model=model,
                    retry_index=index,
                    poll_count=record.poll_count,
                    elapsed_seconds=record.seconds,
                    error_kind=error.kind,
                    error=error.message,
                )
            )
        if sent:
            log.warning(
                "the stream of trace %s was cut after %d image events: %s failed (%s); no fallback",
                run.ctx.trace_id,
                sent,
                leaf.path or creds.provider,
                error.kind.value,
            )
            raise _StreamCut(error)
        return error

    def _stream_mode(self, candidate: _Candidate, run: _Run) -> ProviderError | None:
        """For a streamed request: None when the target may be called (streaming, or answering in one
        piece where the caller allows it; ``candidate.request.stream`` says which), else the refusal
        that skips the target as an attempt without a call."""
        adapter, request = candidate.adapter, candidate.request
        model = request.model or ""
        if _streams(adapter, model):
            return None
        if run.ctx.stream_complete:
            candidate.request = dataclasses.replace(request, stream=False, partial_images=None)
            return None
        provider = candidate.creds.provider
        return ProviderError(
            ErrorKind.BAD_REQUEST,
            f"{provider}: model {model!r} cannot stream partial images, so the target was skipped; "
            f"send {STREAM_SWITCH_HINT} to accept its image as one completed event",
            provider=provider,
            status_code=400,
            code="stream_unsupported",
            param="stream",
        )

    async def _admit(self, candidate: _Candidate, run: _Run, index: int) -> Permit | None:
        """Asks the target's breaker before an attempt; an open circuit skips the target without a call."""
        if self._breakers is None or candidate.identity is None:
            return None
        permit = await self._breakers.acquire(candidate.identity, candidate.leaf.circuit_breaker, force=run.bypassing)
        if not permit.refused:
            return permit
        candidate.retry_at = permit.retry_at
        run.skipped.append(candidate)
        provider = candidate.creds.provider
        skipped = ProviderError(ErrorKind.UNAVAILABLE, "circuit open", provider=provider, status_code=503)
        run.trail.add(
            attempt_record(
                candidate.leaf, provider, candidate.request.model or "", index, error=skipped, circuit_open=True
            )
        )
        raise _CircuitSkipped(skipped)

    def _settle(self, permit: Permit | None, outcome: Outcome) -> None:
        if permit is not None and self._breakers is not None:
            self._breakers.record(permit, outcome)

    def _retry_wait(self, error: ProviderError, use_header: bool, index: int) -> float:
        if use_header and error.retry_after is not None and error.retry_after > 0:
            return min(error.retry_after, MAX_RETRY_AFTER_WITHOUT_DEADLINE)
        return min(0.5 * 2.0**index, 8.0) * self._rng.uniform(0.75, 1.0)


def _streams(adapter: ProviderAdapter, model: str) -> bool:
    """Whether ``adapter`` streams partial images of ``model`` (``PartialImageStreaming``). Asked by
    attribute: ``isinstance`` against a runtime-checkable protocol inspects the class on every call
    (~6-13 us), twice per streamed request."""
    streams = getattr(adapter, "streams", None)
    return streams is not None and bool(streams(model))


def attempt_record(
    leaf: Leaf,
    provider: str,
    model: str,
    index: int,
    *,
    started: float | None = None,
    status_code: int | None = None,
    error: ProviderError | GatewayError | None = None,
    circuit_open: bool = False,
    translations: tuple[str, ...] = (),
    jobs: JobProgress | None = None,
    stream_events: int = 0,
) -> AttemptRecord:
    """The one way an attempt is recorded: on ``leaf`` (its ``retry_index``-th try), timed from
    ``started`` (``time.monotonic()``; None: no call was made, or it is still in flight), with its
    ``error`` or, for a success, ``status_code`` 200. An attempt without either is the call in flight.
    ``jobs`` carries an asynchronous provider's polls into the record; ``stream_events`` counts the
    partial images a streaming caller had from the attempt when it failed."""
    elapsed = 0.0 if started is None else time.monotonic() - started
    return AttemptRecord(
        target=leaf.path,
        provider=provider,
        model=model,
        status_code=error.status_code if error is not None else (status_code or 0),
        latency_ms=int(elapsed * 1000),
        retry_index=index,
        error_kind=error.kind if error is not None else None,
        error=error.message if error is not None else "",
        circuit_open=circuit_open,
        translations=translations,
        virtual_key=leaf.virtual_key or "",
        seconds=elapsed,
        started=started or 0.0,
        poll_count=jobs.polls if jobs is not None else 0,
        poll_seconds=jobs.wait_seconds() if jobs is not None else 0.0,
        stream_events=stream_events,
    )
