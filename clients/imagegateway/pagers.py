"""Pagers: every item of a paged List call, with the page tokens hidden.

Each pager asks for the next page only when the items of the last one are used up, so a caller
that stops early (``logs list --limit``) fetches no more pages than it reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Protocol, TypeVar

_T = TypeVar("_T")


class Page(Protocol):
    """A List response: some items and the token of the next page (empty on the last)."""

    @property
    def next_page_token(self) -> str: ...


_P = TypeVar("_P", bound=Page)


def walk(fetch: Callable[[str], _P], items: Callable[[_P], Iterable[_T]]) -> Iterator[_T]:
    """The items of every page, fetching ``fetch(token)`` page by page from the first."""
    token = ""
    while True:
        page = fetch(token)
        yield from items(page)
        token = page.next_page_token
        if not token:
            return


async def awalk(fetch: Callable[[str], Awaitable[_P]], items: Callable[[_P], Iterable[_T]]) -> AsyncIterator[_T]:
    """``walk`` for the asyncio client: ``fetch`` is awaited for each page."""
    token = ""
    while True:
        page = await fetch(token)
        for item in items(page):
            yield item
        token = page.next_page_token
        if not token:
            return
