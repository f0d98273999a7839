"""A :class:`~shark.peers.client.Client` for synchronous code: its asyncio loop on a
thread of its own, and another thread for the code's callbacks.

Synchronous callers (``shark.epics``, pyepics' API) wait on the loop through
thread-safe futures (:meth:`Background.call`). What the client hears is handed to their
callbacks on the callback thread (:meth:`Background.later`), in order and never on the
loop: a callback may make blocking calls, which the loop goes on serving. Both threads
are daemons, and :meth:`Background.close` ends them (the owner registers it with
``atexit``), so that nothing keeps the interpreter from leaving.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from shark.peers.client import Client

__all__ = ["Background"]

log = logging.getLogger(__name__)


class Background:
    """``client`` started on a loop of its own thread, and the callback thread; the
    threads are named after ``name``."""

    def __init__(self, name: str, client: Client) -> None:
        self.name = name
        self.loop = asyncio.new_event_loop()
        self.callbacks: queue.SimpleQueue[tuple[Callable[..., Any], dict] | None] = \
            queue.SimpleQueue()
        self.loop_thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                            name=f"{name} loop")
        self.callback_thread = threading.Thread(target=self._run_callbacks, daemon=True,
                                                name=f"{name} callbacks")
        self.loop_thread.start()
        self.callback_thread.start()
        self.client = client
        self.call(client.start(), 10.0)

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future:
        """Start ``coro`` on the loop; its future, to wait on or not."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float | None) -> Any:
        """Run ``coro`` on the loop and wait for its result (TimeoutError past
        ``timeout``, the coroutine then cancelled)."""
        if threading.current_thread() is self.loop_thread:
            coro.close()
            raise RuntimeError(f"{self.name}: a blocking call made on its own loop")
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError from None

    def later(self, function: Callable[..., Any], **kwargs: Any) -> None:
        """Have ``function(**kwargs)`` called on the callback thread."""
        self.callbacks.put((function, kwargs))

    def _run_callbacks(self) -> None:
        while (item := self.callbacks.get()) is not None:
            function, kwargs = item
            try:
                function(**kwargs)
            except Exception:  # a user's callback must not end the thread
                log.exception("%s: callback %r failed", self.name, function)

    async def _stop(self) -> None:
        """On the loop: stop the client, then end what is left (watches of callers)."""
        await self.client.stop()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        """Stop the client and both threads; what fails then is not raised (the
        interpreter may be leaving)."""
        with contextlib.suppress(Exception):
            self.call(self._stop(), 3.0)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.loop_thread.join(2.0)
        self.callbacks.put(None)
        if threading.current_thread() is not self.callback_thread:
            self.callback_thread.join(2.0)
        if not self.loop_thread.is_alive():
            self.loop.close()
