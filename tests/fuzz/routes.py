"""Where fuzzed requests may go: only to the emulators, or nowhere (refused before any call).

A fuzzed config or routing header that names a real provider without a host would send the request
to the provider's public API, which this machine cannot reach; that 5xx would be the network's
doing, not the gateway's. ``to_emulators`` points every such target at the matching emulator and
leaves the rest of the fuzzed document alone (unknown providers, bad hosts and all).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from imagegateway.v1 import configs_pb2
from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.providers.registry import canonical_provider


@dataclasses.dataclass(frozen=True)
class FuzzTargets:
    """What the fuzz gateway has: virtual keys and a saved config over the emulators."""

    openai_vk: str
    stability_vk: str
    config_id: str
    openai_url: str
    stability_url: str

    def host_for(self, provider: str) -> str | None:
        """The emulator URL for a provider spelling the gateway knows; None for any other."""
        try:
            canonical = canonical_provider(provider)
        except InvalidArgument:
            return None
        return self.openai_url if canonical == "openai" else self.stability_url

    def config_dict_to_emulators(self, document: Any, inherited_host: bool = False) -> Any:
        """The JSON config with every provider target lacking a custom_host (own or inherited) aimed at an emulator."""
        if not isinstance(document, dict):
            return document
        out = dict(document)
        has_host = inherited_host or bool(out.get("custom_host")) or bool(out.get("customHost"))
        provider = out.get("provider")
        if isinstance(provider, str) and provider and not has_host:
            host = self.host_for(provider)
            if host is not None:
                out["custom_host"] = host
                out.pop("customHost", None)
                has_host = True
        targets = out.get("targets")
        if isinstance(targets, list):
            out["targets"] = [self.config_dict_to_emulators(t, has_host) for t in targets]
        return out

    def config_to_emulators(self, config: configs_pb2.RoutingConfig, inherited_host: bool = False) -> None:
        """The same, in place, for a RoutingConfig message."""
        has_host = inherited_host or bool(config.custom_host)
        if config.provider and not has_host:
            host = self.host_for(config.provider)
            if host is not None:
                config.custom_host = host
                has_host = True
        for target in config.targets:
            self.config_to_emulators(target, has_host)
