"""Test helper: the classified error an adapter's ``generate`` raises, checked to carry none of the secrets."""

from __future__ import annotations

import pytest

from imagegateway_server.domain.errors import ProviderError
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.providers.kit.interface import ProviderAdapter, UpstreamTarget


async def generate_fails(
    adapter: ProviderAdapter, request: ImageRequest, target: UpstreamTarget, *secrets: str
) -> ProviderError:
    """The ProviderError ``adapter.generate(request, target)`` raises; none of ``secrets`` is in its message."""
    with pytest.raises(ProviderError) as raised:
        await adapter.generate(request, target)
    for secret in secrets:
        assert secret not in str(raised.value)
    return raised.value
