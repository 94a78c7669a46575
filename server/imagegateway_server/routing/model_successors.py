"""Serving a retired model by its successor: when to switch, and the memory of models gone per account.

A retired model (``providers/kit/retired_models.json``) is sent as asked. When the provider answers
that it does not exist (OpenAI's 404 ``model_not_found``), the router retries once, at once, with the
successor (``RetiredModels.successor_of``: the chain's live end, parameters rewritten), and this
module remembers for ``memory_seconds`` that the model is gone for that account (provider, host,
credential fingerprint), so later requests call the successor directly. A target opts out with
``model_successor: false``; a strict target (send exactly what was asked, or fail) never switches.

The memory is a state kind (``state.gone_models``): per process and bounded, or, with
IMAGEGW_REDIS_URL, shared through Redis so that a replica that has not seen the 404 does not pay one
of its own (each replica still remembers alone while Redis is unreachable).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.domain.result import ModelSubstitution
from imagegateway_server.providers.kit.retired_models import RetiredModels, Succession
from imagegateway_server.state.breakers import TargetIdentity
from imagegateway_server.state.gone_models import GoneModels
from imagegateway_server.state.in_process.gone_models import LocalGoneModels

RETIRED = "retired"
REMEMBERED = "remembered"
DEFAULT_MEMORY_SECONDS = 3600.0
_GONE_CODES = frozenset({"model_not_found"})


def says_model_is_gone(error: ProviderError) -> bool:
    """Whether a provider's answer means the model no longer exists (OpenAI: 404 ``model_not_found``)."""
    return error.kind is ErrorKind.NOT_FOUND and (
        error.code in _GONE_CODES or "has been deprecated" in error.message.lower()
    )


class ModelSuccessors:
    """The retired-model table and the memory of which accounts have seen a model gone."""

    def __init__(
        self,
        table: RetiredModels,
        *,
        memory_seconds: float = DEFAULT_MEMORY_SECONDS,
        memory: GoneModels | None = None,
        today: Callable[[], datetime.date] = lambda: datetime.datetime.now(datetime.UTC).date(),
    ) -> None:
        self._table = table
        self._memory_seconds = memory_seconds
        self._gone: GoneModels = memory if memory is not None else LocalGoneModels()
        self._today = today

    def remembered(self, provider: str, identity: TargetIdentity, request: ImageRequest) -> Succession | None:
        """The succession to call directly, when this account was told the model is gone and still remembers."""
        if not self._gone.recalls(identity):
            return None
        return self._table.successor_of(provider, request, self._today())

    def after_failure(
        self, provider: str, identity: TargetIdentity, request: ImageRequest, error: ProviderError
    ) -> Succession | None:
        """The succession to retry with after ``error``, remembering the model gone; None when ``error``
        does not say the model is gone or the table has no successor for it."""
        if not says_model_is_gone(error):
            return None
        succession = self._table.successor_of(provider, request, self._today())
        if succession is None:
            return None
        if self._memory_seconds > 0:
            self._gone.remember(identity, self._memory_seconds)
        return succession


def substitution(succession: Succession, reason: str) -> ModelSubstitution:
    """What the response, the log and the metric say about ``succession``."""
    return ModelSubstitution(succession.model, succession.successor, reason, succession.retired_on)
