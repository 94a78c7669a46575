"""Shared calls within one process: the process is the whole fleet, so it always leads (the
in-process ``routing.single_flight`` already shares identical calls among its own requests)."""

from __future__ import annotations

from imagegateway_server.state.flights import FlightEnd


class LocalFlights:
    """Every claim is granted; nothing ever waits on another replica."""

    async def claim(self, key: str) -> bool:
        return True

    def finish(self, key: str, kept: bool) -> None:
        return None

    async def wait(self, key: str, within: float | None) -> FlightEnd:
        return FlightEnd.GONE

    def abandon(self, key: str) -> None:
        return None
