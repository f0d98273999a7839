"""What the client and the server share as things that run: ``start``, ``stop``, and
``async with`` doing both."""

from __future__ import annotations

from typing import TypeVar

_Self = TypeVar("_Self", bound="Service")


class Service:
    """Started with :meth:`start`, stopped with :meth:`stop`; ``async with`` does both."""

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self: _Self) -> _Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
