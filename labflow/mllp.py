"""HL7 v2 over MLLP: an asyncio TCP listener in front of the inbox.

Each frame (0x0B message 0x1C 0x0D) goes through `inbox.receive()` exactly like a signed
HL7 webhook, and only after the row is committed is the ACK written back, so an AA always
means "durably stored". Answers:

- AA: stored and accepted, or a resend of a message already stored (same body or MSH-10);
- AE (+ ERR): stored but parked (cannot be mapped), or MSH-10 reused with another body
  (stored as quarantined);
- AR: nothing stored: bytes outside a frame, a frame over `max_body_bytes`, an empty or
  interrupted frame, or the database refused the write (HL7: reject, the sender resends).

Frames on one connection are answered in order, one at a time (HL7 senders wait for each
ACK). Logs carry row ids and counts only, never message content.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import structlog

from labflow import metrics
from labflow.db import session_scope
from labflow.interop.hl7_ack import AckCode, build_ack
from labflow.interop.hl7_header import Hl7Header, hl7_header
from labflow.services.inbox import Receipt, receive
from labflow.settings import get_settings

log = structlog.get_logger(__name__)

START_BLOCK = 0x0B
END_BLOCK = 0x1C
CARRIAGE_RETURN = 0x0D
CONTENT_TYPE = "application/hl7-v2"
DEFAULT_INTERFACE = "mllp"
READ_SIZE = 64 * 1024
SNIFF_BYTES = 4096  # enough of a rejected frame to read its MSH and echo MSH-10
_BLANK = frozenset(b" \t\r\n")  # between frames: senders pad with line ends

Problem = Literal["garbage", "oversized", "interrupted", "empty"]


@dataclass(frozen=True)
class Frame:
    """The content of one complete frame (framing bytes removed)."""

    body: bytes


@dataclass(frozen=True)
class Rejected:
    """Bytes that are not a usable frame; `head` is kept only to read an MSH from."""

    problem: Problem
    head: bytes
    size: int


Event = Frame | Rejected


@dataclass
class FrameParser:
    """Incremental MLLP de-framer: feed it whatever `read()` returned, get frames back.

    Outside a frame everything up to the next 0x0B is discarded (blank padding silently,
    anything else reported once per run). A frame is closed by 0x1C; the 0x0D after it is
    optional here, and a stray one is just padding. A frame over `max_bytes` is not
    buffered further: it is skipped to its end and reported.
    """

    max_bytes: int
    _buffer: bytearray = field(default_factory=bytearray)
    _in_frame: bool = False
    _size: int = 0  # bytes of the current frame, including any not buffered
    _garbage: bytearray = field(default_factory=bytearray)
    _garbage_size: int = 0

    def feed(self, data: bytes) -> Iterator[Event]:
        pos, end = 0, len(data)
        while pos < end:
            if not self._in_frame:
                start = data.find(START_BLOCK, pos)
                stop = end if start < 0 else start
                yield from self._outside(data[pos:stop], closed=start >= 0)
                if start < 0:
                    return
                self._in_frame, self._size = True, 0
                self._buffer.clear()
                pos = start + 1
                continue
            close = data.find(END_BLOCK, pos)
            restart = data.find(START_BLOCK, pos)
            if restart >= 0 and (close < 0 or restart < close):
                # A new frame began before this one ended: the sender gave up on it.
                self._take(data[pos:restart])
                yield Rejected("interrupted", bytes(self._buffer[:SNIFF_BYTES]), self._size)
                self._in_frame = False
                pos = restart
                continue
            self._take(data[pos : end if close < 0 else close])
            if close < 0:
                return
            self._in_frame, pos = False, close + 1
            if self._size > self.max_bytes:
                yield Rejected("oversized", bytes(self._buffer[:SNIFF_BYTES]), self._size)
            elif not bytes(self._buffer).strip():
                yield Rejected("empty", b"", 0)
            else:
                yield Frame(bytes(self._buffer))
            self._buffer.clear()

    def flush(self) -> Iterator[Event]:
        """Report unframed bytes seen so far (called when a read has been consumed)."""
        if self._garbage_size:
            yield Rejected("garbage", bytes(self._garbage), self._garbage_size)
            self._garbage.clear()
            self._garbage_size = 0

    def _outside(self, chunk: bytes, *, closed: bool) -> Iterator[Event]:
        if chunk.strip(bytes(_BLANK)) or self._garbage_size:
            if len(self._garbage) < SNIFF_BYTES:
                self._garbage += chunk[: SNIFF_BYTES - len(self._garbage)]
            self._garbage_size += len(chunk)
        # Garbage that is only padding plus a stray end block is not worth an answer.
        if self._garbage_size and not bytes(self._garbage).strip(bytes([*_BLANK, END_BLOCK])):
            self._garbage.clear()
            self._garbage_size = 0
        if closed:
            yield from self.flush()

    def _take(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size <= self.max_bytes:
            self._buffer += chunk
            return
        # Too big: stop buffering; only the head is needed again, to read MSH for the AR.
        del self._buffer[SNIFF_BYTES:]
        if len(self._buffer) < SNIFF_BYTES:
            self._buffer += chunk[: SNIFF_BYTES - len(self._buffer)]


def frame(message: bytes | str) -> bytes:
    """Wrap one HL7 message in MLLP framing."""
    data = message.encode() if isinstance(message, str) else message
    return bytes([START_BLOCK]) + data + bytes([END_BLOCK, CARRIAGE_RETURN])


def webhook_id_for(body: bytes) -> str:
    # Stable per body: an identical resend is a duplicate even when MSH-10 is missing.
    return f"mllp-{hashlib.sha256(body).hexdigest()[:32]}"


def ack_for_receipt(receipt: Receipt) -> tuple[AckCode, list[str]]:
    if receipt.status in ("accepted", "duplicate"):
        return "AA", []
    return "AE", receipt.errors or [f"message {receipt.status}"]


_REJECT_TEXT: dict[Problem, str] = {
    "garbage": "data outside an MLLP frame (expected 0x0B message 0x1C 0x0D); not stored",
    "oversized": "message of {size} bytes exceeds the {limit}-byte limit; not stored",
    "interrupted": "frame interrupted by a new start block before its end; not stored",
    "empty": "empty MLLP frame; not stored",
}


def _sniff(head: bytes) -> Hl7Header | None:
    try:
        return hl7_header(head)
    except Exception:  # a rejected frame's head may be anything; the ACK works without it
        return None


StoreFn = Callable[[bytes], Receipt]


class MllpServer:
    """The listener. `await start()`, then `await stop()` (graceful) from the same loop."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        interface: str = DEFAULT_INTERFACE,
        max_body_bytes: int | None = None,
        db_threads: int = 8,
        store: StoreFn | None = None,
        idle_timeout: float = 600.0,
        max_connections: int = 200,
    ) -> None:
        self.host, self.port, self.interface = host, port, interface
        self.max_body_bytes = max_body_bytes or get_settings().max_body_bytes
        self._store = store or self._receive
        # Bounded: a burst of connections queues for the database instead of swamping it.
        self._executor = ThreadPoolExecutor(db_threads, thread_name_prefix="mllp-db")
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], bool] = {}  # task -> idle (in read())
        self._stopping = False
        # A silent peer holds a socket and a task; an LIS reconnects when it has work.
        self.idle_timeout, self.max_connections = idle_timeout, max_connections

    async def start(self) -> int:
        """Bind and listen; return the port (useful with port 0)."""
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, limit=READ_SIZE
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("mllp.listening", host=self.host, port=self.port, interface=self.interface)
        return self.port

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        with contextlib.suppress(asyncio.CancelledError):
            await self._server.serve_forever()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting; let frames being stored get their ACK; close every connection."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        idle = [task for task, waiting in self._connections.items() if waiting]
        busy = [task for task, waiting in self._connections.items() if not waiting]
        for task in idle:
            task.cancel()
        if busy:
            _done, late = await asyncio.wait(busy, timeout=grace)
            for task in late:
                task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=grace)
        if self._server is not None:
            await self._server.wait_closed()
        # Let a write already handed to a thread commit before the process goes away.
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        log.info("mllp.stopped", port=self.port)

    def _receive(self, body: bytes) -> Receipt:
        with session_scope() as session:
            return receive(
                session,
                interface=self.interface,
                webhook_id=webhook_id_for(body),
                content_type=CONTENT_TYPE,
                body=body,
                max_body_bytes=self.max_body_bytes,
            )

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        parser = FrameParser(self.max_body_bytes)
        frames = 0
        if len(self._connections) >= self.max_connections:
            log.warning("mllp.connection_refused", reason="too many connections")
            writer.close()
            return
        try:
            while not self._stopping:
                self._connections[task] = True
                try:
                    data = await asyncio.wait_for(reader.read(READ_SIZE), self.idle_timeout)
                except TimeoutError:
                    log.info("mllp.idle_timeout", frames=frames)
                    break
                self._connections[task] = False
                if not data:
                    break
                for item in [*parser.feed(data), *parser.flush()]:
                    if self._stopping:
                        break  # unanswered frames are resent by the sender; dedupe holds
                    await self._answer(item, writer)
                    frames += 1
        except asyncio.CancelledError:
            pass  # shutdown: only ever cancelled between frames or after the grace period
        except ConnectionError as exc:
            log.info("mllp.connection_lost", error=type(exc).__name__, frames=frames)
        except Exception:  # a bug must not kill the listener; the sender will resend
            log.exception("mllp.connection_failed", frames=frames)
        finally:
            self._connections.pop(task, None)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _answer(self, item: Event, writer: asyncio.StreamWriter) -> None:
        if isinstance(item, Frame):
            try:
                loop = asyncio.get_running_loop()
                receipt = await loop.run_in_executor(self._executor, self._store, item.body)
            except Exception as exc:
                # Not stored, so not acknowledged as such: AR asks the sender to resend.
                log.error("mllp.store_failed", error=type(exc).__name__)
                ack = build_ack(
                    _sniff(item.body[:SNIFF_BYTES]),
                    "AR",
                    ["message not stored: internal error, resend"],
                )
            else:
                metrics.MESSAGES_RECEIVED.labels(self.interface, receipt.status).inc()
                code, errors = ack_for_receipt(receipt)
                ack = build_ack(receipt.hl7 or _sniff(item.body[:SNIFF_BYTES]), code, errors)
                log.info(
                    "mllp.stored",
                    message_id=receipt.message_id,
                    status=receipt.status,
                    ack=code,
                    errors=len(receipt.errors),
                )
        else:
            text = _REJECT_TEXT[item.problem].format(size=item.size, limit=self.max_body_bytes)
            ack = build_ack(_sniff(item.head), "AR", [text])
            log.warning("mllp.rejected", problem=item.problem, size=item.size)
        writer.write(frame(ack))
        await writer.drain()


class BackgroundMllpServer:
    """An `MllpServer` on its own event loop in a daemon thread (tests, embedding)."""

    def __init__(self, server: MllpServer) -> None:
        self.server = server
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mllp", daemon=True)

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> BackgroundMllpServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(10)
        return self

    def stop(self, grace: float = 10.0) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(grace), self._loop).result(grace * 3)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


async def serve(host: str, port: int, interface: str = DEFAULT_INTERFACE) -> None:
    """Run until cancelled (Ctrl-C or SIGTERM), then shut down gracefully."""
    server = MllpServer(host, port, interface=interface)
    await server.start()
    main = asyncio.current_task()
    if main is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
            # `docker stop` sends SIGTERM: finish the frames being stored, then exit.
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    try:
        await server.serve_forever()
    finally:
        await server.stop()
