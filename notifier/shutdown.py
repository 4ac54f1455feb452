"""Closing sockets with a reason before uvicorn closes them without one.

On SIGTERM or SIGINT uvicorn first closes every WebSocket with a bare 1012 and only then
runs the app's lifespan shutdown, too late to tell clients why and when to come back.
So each worker process chains a handler in front of uvicorn's: it closes the sockets
with 1012 "server restarting; retry_after_ms=..." (refusing new ones meanwhile), then
hands the signal on to uvicorn, which stops as usual. This works the same with one
process and with `--workers`, where uvicorn's supervisor builds each worker's server.
"""

import asyncio
import signal
import threading
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

EXIT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def close_first_on_exit_signals(close_sockets: Callable[[], Awaitable[None]]) -> Callable[[], None]:
    """Install the handlers; returns a function that puts the previous ones back."""
    if threading.current_thread() is not threading.main_thread():
        # Signals only reach the main thread (an app run by a test client is not there).
        return lambda: None
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {sig: signal.getsignal(sig) for sig in EXIT_SIGNALS}
    tasks: set[asyncio.Task[None]] = set()

    async def close_then_pass_on(sig: int, frame: FrameType | None) -> None:
        try:
            await close_sockets()
        finally:
            handler = previous[sig]
            if callable(handler):
                handler(sig, frame)
            else:
                signal.signal(sig, handler)
                signal.raise_signal(sig)

    def handle(sig: int, frame: FrameType | None) -> None:
        def start() -> None:
            task = loop.create_task(close_then_pass_on(sig, frame))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        loop.call_soon_threadsafe(start)

    for sig in EXIT_SIGNALS:
        signal.signal(sig, handle)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
