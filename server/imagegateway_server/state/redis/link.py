"""The connection to Redis and whether this replica uses it: a bounded time per call, hysteresis, a probe.

Every Redis call of the state backends goes through the link: ``call`` for the hot path's single
commands (those issued in one turn of the event loop share one pipeline, one round trip), ``send``
for the same without waiting for the reply, ``defer`` for writes nobody waits for (they travel with
the next calls), ``run`` for the rest. ``send`` and ``defer`` can also hold a write until the request
being served has its answer (``after_answer``, for a miss's store and its shared call's end), so that it
is neither on that request's path nor on the next one's. A call that errs or takes longer than the
per-call timeout raises ``RedisUnavailable`` at once (the backend then answers from its in-process
fallback), but the replica only gives up on Redis after ``failures_to_down`` consecutive failures, so
one scheduling stall on a busy machine does not flip it. While given up, calls are not tried at all; a
probe pings Redis every ``PROBE_INTERVAL_SECONDS`` and, when it answers, the replica goes back. Each
flip is logged once and told to the listeners (the metric ``imagegateway_state_backend_up``, health
details, the backends' own reactions).

The URL may carry a password: it is never logged, never in an error, never in health details
(``redacted_url``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import hiredis
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import DataError, NoScriptError, RedisError, ResponseError

from imagegateway_server.state.answering import answering_task

log = logging.getLogger(__name__)

T = TypeVar("T")

SCHEMES = ("redis", "rediss", "unix")
PROBE_INTERVAL_SECONDS = 1.0
# Writes nobody waits for (releases, spend) wait this long for a call to travel with.
DEFER_SECONDS = 0.02
# Connections the replica opens at most for ``run``'s calls; calls past them wait for one (within the
# per-call timeout).
MAX_CONNECTIONS = 64
# Connections of the hot path's flushes (a pool of their own), of which this many are kept open
# between flushes (more are given back to the pool).
FLUSH_CONNECTIONS = 32
IDLE_CONNECTIONS = 4
# Arguments longer than this (a cached answer's bytes) are written to the socket as they are, not
# copied into the packed command.
_LARGE_ARGUMENT = 16 * 1024

# Told of each flip: True when the replica goes back to Redis, False when it gives up on it.
UpListener = Callable[[bool], None]
# Run (awaited, in order) before the replica goes back to Redis: resync what was missed meanwhile.
ReturnHook = Callable[[], Awaitable[None]]


class _When(enum.Enum):
    """When a queued command goes (each also goes with any flush that comes first)."""

    NOW = "in the loop's next turn"  # a call
    AFTER_ANSWER = "once the request being served has its answer"  # ``state.answering``
    LATER = "with the next call, at the latest after DEFER_SECONDS"


class RedisUnavailable(Exception):
    """This call could not use Redis (given up on, failed or too slow): answer from the fallback."""


def redacted_url(url: str) -> str:
    """``url`` without its user info and query (which may hold a password): scheme, host, port, path."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def check_url(url: str) -> None:
    """ValueError (naming the setting, never the URL) unless ``url`` is a Redis URL redis-py opens."""
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise ValueError("IMAGEGW_REDIS_URL must start with redis://, rediss:// or unix://")
    try:
        urlsplit(url).port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError("IMAGEGW_REDIS_URL has a port that is not a number") from None


def _pool(url: str, *, socket_timeout: float | None, connect_timeout: float, max_connections: int) -> Any:
    # No retries inside redis-py: the link decides what a failure means, within its own timeout.
    return BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=connect_timeout,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        socket_keepalive=True,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


def pack_commands(commands: list[tuple[tuple[Any, ...], Any]]) -> list[bytes]:
    """The commands of a pipeline's stack (``(arguments, options)`` each) as RESP, ready for the socket.

    Each command is packed by hiredis in C (redis-py's own packer, generic Python per argument, was
    most of the gateway's CPU per round trip), except one holding a large value (an answer's image
    bytes), whose value goes to the socket as its own chunk, not copied into the packed command.
    Arguments are text, bytes or numbers, as redis-py's encoder takes them (a bool or None refused).
    """
    chunks: list[bytes] = []
    pieces: list[bytes] = []
    for arguments, _ in commands:
        name = arguments[0]
        if isinstance(name, str) and " " in name:  # "SCRIPT LOAD": two words on the wire
            arguments = (*name.split(), *arguments[1:])
        large = False
        for argument in arguments:
            if type(argument) is bytes and len(argument) > _LARGE_ARGUMENT:
                large = True
                break
        if not large:
            try:
                pieces.append(hiredis.pack_command(arguments))
            except TypeError as refused:
                raise DataError(str(refused)) from None
            continue
        pieces.append(b"*%d\r\n" % len(arguments))
        for argument in arguments:
            if type(argument) is bytes and len(argument) > _LARGE_ARGUMENT:
                pieces.append(b"$%d\r\n" % len(argument))
                chunks.append(b"".join(pieces))
                chunks.append(argument)
                pieces = [b"\r\n"]
            else:
                try:
                    packed = hiredis.pack_command((argument,))
                except TypeError as refused:
                    raise DataError(str(refused)) from None
                pieces.append(packed[packed.index(b"\n") + 1 :])  # the argument without "*1\r\n"
    chunks.append(b"".join(pieces))
    return chunks


class RedisLink:
    """One replica's connection to Redis, with its up / given-up state. ``open`` then ``close``."""

    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float,
        failures_to_down: int,
        probe_interval_seconds: float = PROBE_INTERVAL_SECONDS,
    ) -> None:
        check_url(url)
        if timeout_seconds <= 0 or failures_to_down < 1:
            raise ValueError("timeout_seconds must be positive and failures_to_down at least 1")
        self.url = url
        self.shown_url = redacted_url(url)
        self.timeout = timeout_seconds
        self.failures_to_down = failures_to_down
        self.probe_interval = probe_interval_seconds
        # Tells this replica's own pub/sub messages and per-replica holds apart from the others'.
        self.replica_id = secrets.token_hex(8)
        self.client: Redis = Redis(
            connection_pool=_pool(
                url, socket_timeout=timeout_seconds, connect_timeout=timeout_seconds, max_connections=MAX_CONNECTIONS
            )
        )
        # The flushes' connections: no socket timeout of redis-py's (a timer per read, a task per
        # write), since each flush runs within the link's own timeout as a whole.
        self._flush_pool: Any = _pool(
            url, socket_timeout=None, connect_timeout=timeout_seconds, max_connections=FLUSH_CONNECTIONS
        )
        self._up = True
        self._failures = 0
        self._since = time.time()
        self._last_error = ""
        self._listeners: list[UpListener] = []
        self._return_hooks: list[ReturnHook] = []
        self._probe: asyncio.Task[None] | None = None
        self._closed = False
        # Writes queued by synchronous calls (finish, release, record): kept referenced until done.
        self._writes: set[asyncio.Task[Any]] = set()
        # Commands queued by ``call`` and ``defer`` for the next flush, with the futures of ``call``'s.
        self._queued: list[tuple[Callable[[Any], object], asyncio.Future[Any] | None]] = []
        self._flush_scheduled = False
        self._deferred_flush: asyncio.TimerHandle | None = None
        # Tasks answering requests whose deferred writes are queued: their end sends them (``_answered``).
        self._answering: set[asyncio.Future[Any]] = set()
        self._scripts: dict[str, str] = {}
        # Collects the commands of each flush (``_collect``); never executed itself.
        self._pipe: Any = self.client.pipeline(transaction=False)
        # Connections taken from the pool by ``_execute`` and kept for the next flush.
        self._idle: list[Connection] = []

    @property
    def up(self) -> bool:
        return self._up

    def subscriber_client(self) -> Redis:
        """A client for the pub/sub connection: no read timeout, since it waits for messages."""
        return Redis(
            connection_pool=_pool(self.url, socket_timeout=None, connect_timeout=self.timeout, max_connections=2)
        )

    def add_listener(self, listener: UpListener) -> None:
        self._listeners.append(listener)

    def add_return_hook(self, hook: ReturnHook) -> None:
        self._return_hooks.append(hook)

    async def open(self) -> None:
        """Pings Redis once: unreachable at start means starting given up (with the probe running)."""
        try:
            await self.run(lambda client: client.ping())
        except RedisUnavailable:
            self._give_up()

    def spawn(self, write: Awaitable[Any]) -> None:
        """Runs a queued write in the background (its failures are counted by ``run``, never raised)."""
        task = asyncio.ensure_future(self._swallow(write))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    def script(self, source: str) -> str:
        """Registers a Lua script for ``call`` (``pipe.evalsha(sha, ...)``); returns its SHA-1. A server
        that does not know it yet (a restart) is sent it on first use."""
        sha = hashlib.sha1(source.encode()).hexdigest()
        self._scripts[sha] = source
        return sha

    async def call(self, add_command: Callable[[Any], object]) -> Any:
        """One Redis command, sent with every other command queued in this turn of the event loop as one
        pipeline: ``add_command(pipeline)`` adds exactly one command, whose reply is returned.

        The hot path's commands (a key's limits, a cache look-up begun beside them, the writes of requests
        that just ended) so share one round trip. RedisUnavailable as for ``run``.
        """
        # No timer of its own: the flush that carries it runs within the timeout and settles every future.
        return await self.send(add_command)

    def send(self, add_command: Callable[[Any], object], *, after_answer: bool = False) -> asyncio.Future[Any]:
        """``call`` without waiting: the command is queued now (commands queued one after another travel in
        that order, in one pipeline) and the future gets its reply, or RedisUnavailable.

        ``after_answer=True`` holds it until the request being served has its answer (``state.answering``:
        the task answering it is done), unless a call takes it first or ``DEFER_SECONDS`` pass: for writes
        the caller need not wait for, like a cached answer's store.
        """
        if not self._up:
            raise RedisUnavailable
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue(add_command, future, _When.AFTER_ANSWER if after_answer else _When.NOW)
        return future

    def defer(self, add_commands: Callable[[Any], object], *, after_answer: bool = False) -> None:
        """Queues commands (``add_commands(pipeline)`` adds them; nobody waits for their replies) to
        travel with the next call, or on their own after ``DEFER_SECONDS`` if no call comes first;
        ``after_answer=True`` also sends them once the request being served has its answer (as ``send``),
        for writes other replicas wait for, like a shared call's end."""
        if self._up:
            self._queue(add_commands, None, _When.AFTER_ANSWER if after_answer else _When.LATER)

    def _queue(self, add: Callable[[Any], object], future: asyncio.Future[Any] | None, when: _When) -> None:
        self._queued.append((add, future))
        if self._flush_scheduled:
            return
        loop = asyncio.get_running_loop()
        if when is _When.NOW:
            self._schedule_flush(loop)
            return
        answering = answering_task() if when is _When.AFTER_ANSWER else None
        if answering is not None and not answering.done() and answering not in self._answering:
            # Its end sends what is queued then: off the caller's path, and off the next request's.
            self._answering.add(answering)
            answering.add_done_callback(self._answered)
        if self._deferred_flush is None:
            self._deferred_flush = loop.call_later(DEFER_SECONDS, self._start_flush)

    def _answered(self, task: asyncio.Future[Any]) -> None:
        self._answering.discard(task)
        if self._queued and not self._flush_scheduled:
            # In the loop's next turn, so that the requests ending in this one share the flush.
            self._schedule_flush(asyncio.get_running_loop())

    def _schedule_flush(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._deferred_flush is not None:
            self._deferred_flush.cancel()
            self._deferred_flush = None
        self._flush_scheduled = True
        # Its first step runs after the callbacks already ready (a look-up task started just before), so
        # what they queue joins in; a task made now rather than by a callback saves the loop a turn.
        self._track(loop.create_task(self._flush_scheduled_batch()))

    async def _flush_scheduled_batch(self) -> None:
        if self._flush_scheduled:  # else ``_start_flush`` took the batch first
            self._flush_scheduled = False
            batch, self._queued = self._queued, []
            if batch:
                await self._flush(batch)

    def _start_flush(self) -> None:
        self._flush_scheduled = False
        if self._deferred_flush is not None:
            self._deferred_flush.cancel()
            self._deferred_flush = None
        batch, self._queued = self._queued, []
        if batch:
            self._track(asyncio.ensure_future(self._flush(batch)))

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _flush(self, batch: list[tuple[Callable[[Any], object], asyncio.Future[Any] | None]]) -> None:
        task = asyncio.current_task()
        assert task is not None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        # The flush's timeout: a timer of its own (asyncio.timeout costs a few times more per flush).
        timer = asyncio.get_running_loop().call_later(self.timeout, expire)
        try:
            try:
                replies = await self._send(batch)
            except asyncio.CancelledError:
                if not expired:
                    raise  # shutdown
                task.uncancel()
                self.failed(TimeoutError())
                return
            except (RedisError, OSError) as exc:
                self.failed(exc)  # one failure per flush, however many commands it carried
                return
            finally:
                timer.cancel()
            self._failures = 0
            for (_, future), reply in zip(batch, replies, strict=True):
                if future is None or future.done():
                    continue
                if isinstance(reply, Exception):
                    future.set_exception(RedisUnavailable())  # a command Redis refused: answer from the fallback
                else:
                    future.set_result(reply)
        finally:
            # Whatever happened (a failure, or a cancel at shutdown), no caller is left waiting.
            for _, future in batch:
                if future is not None and not future.done():
                    future.set_exception(RedisUnavailable())

    async def _send(self, batch: list[tuple[Callable[[Any], object], asyncio.Future[Any] | None]]) -> list[Any]:
        """Sends the batch as one pipeline; the reply of each entry's command (None for an entry of several)."""
        starts: list[int] = []
        stack = self._collect([add for add, _ in batch], starts)
        results = await self._execute(stack)
        ends = [*starts[1:], len(results)]
        # Each entry's reply: its command's for one command (for deferred ones too, which may be scripts),
        # None for a deferred entry of several (nobody reads those).
        replies = [results[start] if end - start == 1 else None for start, end in zip(starts, ends, strict=True)]
        unknown = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if unknown:
            # Redis restarted and forgot the scripts: load them and send those calls again (only those:
            # the other commands in the batch were applied, and some add to counters; an entry sent
            # again adds the same command as the first time).
            loads = [lambda pipe, source=source: pipe.script_load(source) for source in self._scripts.values()]
            again = await self._execute(self._collect([*loads, *(batch[i][0] for i in unknown)], []))
            for i, reply in zip(unknown, again[len(self._scripts) :], strict=True):
                replies[i] = reply
        return replies

    def _collect(self, adds: Iterable[Callable[[Any], object]], starts: list[int]) -> list[Any]:
        """The commands the ``adds`` add to a pipeline (redis-py's command methods build them), as its
        stack of ``(arguments, options)``; ``starts`` gets where each one's begin. One pipeline object
        serves every flush (its stack is taken each time): making one per flush cost as much as a command."""
        pipe = self._pipe
        try:
            for add in adds:
                starts.append(len(pipe.command_stack))
                add(pipe)
            stack: list[Any] = pipe.command_stack
            return stack
        finally:
            pipe.command_stack = []

    async def _execute(self, stack: list[Any]) -> list[Any]:
        """The commands of a pipeline's ``stack``, written at once on one connection, and their replies in
        order (a command Redis refused: its ResponseError in its place).

        What ``Pipeline.execute`` does for a non-transactional pipeline, without what this path never
        uses (retries: the link has none; transactions, WATCH, client-side observability hooks) and on a
        connection kept here between flushes instead of the blocking pool's lock, condition and timer per
        borrow: measured, those were about a third of the gateway's CPU per round trip.
        """
        if not stack:
            return []
        pool = self._flush_pool
        connection: Connection = self._idle.pop() if self._idle else await pool.get_connection()
        try:
            await connection.send_packed_command(pack_commands(stack), check_health=False)
            replies: list[Any] = []
            read = connection.read_response
            for _ in stack:
                # Redis's own replies, without redis-py's per-command callbacks (this path's commands are
                # GET, SET and scripts, whose callers read the raw reply: SET's b"OK" or None).
                try:
                    replies.append(await read())
                except ResponseError as refused:
                    replies.append(refused)
        except BaseException:
            # Replies may still be on the socket (a timeout, a cancel): never reuse it.
            await connection.disconnect(nowait=True)
            await pool.release(connection)
            raise
        if len(self._idle) < IDLE_CONNECTIONS and not self._closed:
            self._idle.append(connection)
        else:
            await pool.release(connection)
        return replies

    @staticmethod
    async def _swallow(write: Awaitable[Any]) -> None:
        with contextlib.suppress(RedisUnavailable):
            await write

    async def drain(self) -> None:
        """Sends what is queued and waits for the queued writes (each is bounded by the timeout)."""
        if self._queued:
            self._start_flush()
        while self._writes:
            await asyncio.wait(set(self._writes), timeout=self.timeout * 2)

    async def close(self) -> None:
        """Lets queued writes finish, then closes the connections."""
        await self.drain()
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            await self._flush_pool.release(connection)
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        await self.client.aclose()
        await self._flush_pool.disconnect()

    async def run(self, call: Callable[[Redis], Awaitable[T]]) -> T:
        """Runs one Redis call within the timeout; RedisUnavailable if given up on, failed or slow."""
        if not self._up:
            raise RedisUnavailable
        try:
            async with asyncio.timeout(self.timeout):
                result = await call(self.client)
        except (RedisError, OSError, TimeoutError) as exc:
            self.failed(exc)
            raise RedisUnavailable from None
        self._failures = 0
        return result

    def failed(self, exc: BaseException) -> None:
        """Counts one failed call (also for calls made outside ``run``, like queued writes)."""
        self._last_error = type(exc).__name__
        self._failures += 1
        if self._up and self._failures >= self.failures_to_down:
            self._give_up()

    def status(self) -> dict[str, object]:
        """For health details: never the URL's password."""
        return {
            "backend": "redis",
            "url": self.shown_url,
            "up": self._up,
            "since": round(self._since, 3),
            "serving_from": "redis" if self._up else "in-process state (Redis unreachable)",
            **({} if self._up else {"last_error": self._last_error}),
        }

    def _give_up(self) -> None:
        if not self._up and self._probe is not None:
            return
        self._up = False
        self._since = time.time()
        log.warning(
            "Redis at %s is unreachable or too slow (%s, %d calls in a row); serving with in-process state "
            "until it answers again",
            self.shown_url,
            self._last_error or "no answer",
            self._failures,
        )
        self._tell(False)
        if not self._closed:
            self._probe = asyncio.get_running_loop().create_task(self._probe_until_back())

    async def _probe_until_back(self) -> None:
        # The kept connections went to the server that failed: the first flush after the return would fail on them.
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.disconnect(nowait=True)
            await self._flush_pool.release(connection)
        while True:
            await asyncio.sleep(self.probe_interval)
            try:
                async with asyncio.timeout(self.timeout):
                    await self.client.ping()
            except (RedisError, OSError, TimeoutError) as exc:
                self._last_error = type(exc).__name__
                continue
            try:
                for hook in self._return_hooks:
                    async with asyncio.timeout(max(self.timeout * 20, 5.0)):
                        await hook()
            except (RedisError, OSError, TimeoutError) as exc:
                self._last_error = type(exc).__name__
                continue
            except Exception:
                log.exception("a state backend could not resync with Redis; trying again")
                continue
            break
        self._failures = 0
        self._up = True
        self._since = time.time()
        self._probe = None
        log.info("Redis at %s answers again; shared state is back in use", self.shown_url)
        self._tell(True)

    def _tell(self, up: bool) -> None:
        for listener in self._listeners:
            try:
                listener(up)
            except Exception:
                log.exception("a Redis state listener failed")
