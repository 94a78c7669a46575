"""The memory of models a provider said are gone, per account: the ``GoneModels`` interface.

When a provider answers that a retired model no longer exists (``routing.model_successors``), the
router remembers it for the account (provider, host, credential fingerprint, model) for a while,
so later requests go to the successor without paying the 404 again. Reads are on the request path
and synchronous (a dictionary look-up); a backend that shares the memory does so in the background.
"""

from __future__ import annotations

from typing import Protocol

from imagegateway_server.state.breakers import TargetIdentity

# Accounts x retired models; beyond this the oldest memories are dropped (they cost one 404 each).
MAX_REMEMBERED = 10_000


class GoneModels(Protocol):
    """Which accounts were told a model is gone, until when."""

    def remember(self, identity: TargetIdentity, seconds: float) -> None:
        """Remembers for ``seconds`` that ``identity``'s model is gone for its account."""
        ...

    def recalls(self, identity: TargetIdentity) -> bool:
        """Whether ``identity``'s model is still remembered gone."""
        ...
