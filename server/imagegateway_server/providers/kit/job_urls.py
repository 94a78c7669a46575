"""Checks the URLs an asynchronous provider's answers point to before the gateway follows any of them.

A submit answers with URLs to poll, fetch and cancel (BFL's ``polling_url``, fal's ``status_url``,
``response_url``, ``cancel_url``), and a finished job with a result URL (BFL's ``result.sample``,
fal's ``images[].url``). Each is an upstream call the provider chose, so each is checked against the
provider's own hosts before it is fetched: a provider folder declares ``JobHosts`` (its API hosts,
which get the provider's key, and its delivery hosts, which do not), and a URL elsewhere is
refused and logged, never fetched. Also accepted: the origin the job was submitted to (a
``custom_host`` or operator base URL, already checked against the allow list) and hosts on the
operator's upstream allow list. The global SSRF guard (``UpstreamClient``'s ``url_check`` and
resolver) still applies to every call on top of this.

Whether the key travels is decided by the URL's role, not its host: status, result and cancel URLs
are API calls (key sent), result files are not (``sends_key=False``: pre-signed or public).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from urllib.parse import urlsplit

from yarl import URL

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.providers.kit.transport import UpstreamClient

log = logging.getLogger(__name__)

_DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL_CHARS = "[a-z0-9-]+"


@dataclasses.dataclass(frozen=True, slots=True)
class HostPatterns:
    """Host names, exact (``api.bfl.ai``) or with ``*`` standing for part of the first label
    (``delivery-*.bfl.ai``, ``*.fal.media``: one label, never a dot)."""

    patterns: tuple[str, ...]
    _compiled: tuple[re.Pattern[str], ...] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = []
        for pattern in self.patterns:
            first, dot, rest = pattern.lower().partition(".")
            if not dot or not rest or "*" in rest or ("*" in first and "." not in rest):
                # A wildcard spans part of one label, below a domain of two labels or more.
                raise ValueError(f"host pattern {pattern!r} may use '*' only in its first label, over a domain")
            label = _LABEL_CHARS.join(re.escape(part) for part in first.split("*"))
            compiled.append(re.compile(f"{label}\\.{re.escape(rest)}"))
        object.__setattr__(self, "_compiled", tuple(compiled))

    def matches(self, host: str) -> bool:
        name = host.lower().rstrip(".")
        return any(pattern.fullmatch(name) for pattern in self._compiled)


@dataclasses.dataclass(frozen=True, slots=True)
class JobHosts:
    """Where one provider's job URLs may point: its API hosts (polls, results, cancels, with the
    key) and its delivery hosts (result files, without it). Both over https only."""

    provider: str
    api: HostPatterns
    delivery: HostPatterns

    def check(self, url: object, *, role: str, sends_key: bool, submitted_to: str, client: UpstreamClient) -> str:
        """``url`` when the provider's answer may send us there; else UPSTREAM_BUG (502), logged.

        ``role`` names the field the URL came from (for the log and the error); ``submitted_to``
        is the URL the job was submitted to; ``sends_key`` says the call will carry the key.
        """
        if not isinstance(url, str) or not url:
            raise self._refused(role, "is missing or not a string", host="")
        try:
            parts = urlsplit(url)
            port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)
            host = (parts.hostname or "").lower()
        except ValueError:
            raise self._refused(role, "is not a valid URL", host="") from None
        if parts.scheme not in _DEFAULT_PORTS or not host:
            raise self._refused(role, "is not an http(s) URL with a host", host=host)
        if parts.username is not None or parts.password is not None:
            raise self._refused(role, "carries credentials", host=host)
        if _same_origin(parts.scheme, host, port, submitted_to):
            return url
        own = self.api.matches(host) or (not sends_key and self.delivery.matches(host))
        if own and parts.scheme == "https":
            return url
        try:
            listed = client.is_allow_listed(URL(url))
        except ValueError:
            listed = False
        if listed:
            return url
        where = "the provider's API hosts" if sends_key else "the provider's API or delivery hosts"
        raise self._refused(role, f"points to {host!r}, which is not one of {where} or the allow list", host=host)

    def _refused(self, role: str, why: str, *, host: str) -> ProviderError:
        log.warning(
            "refused a job URL from an upstream answer",
            extra={"provider": self.provider, "url_field": role, "upstream_host": host, "reason": why},
        )
        return ProviderError(
            ErrorKind.UPSTREAM_BUG,
            f"{self.provider}: the upstream answer's {role} {why}; it was not fetched",
            provider=self.provider,
            status_code=502,
            code="upstream_url_refused",
        )


def _same_origin(scheme: str, host: str, port: int, submitted_to: str) -> bool:
    try:
        base = urlsplit(submitted_to)
        base_port = base.port or _DEFAULT_PORTS.get(base.scheme, 0)
    except ValueError:
        return False
    return (base.scheme, (base.hostname or "").lower(), base_port) == (scheme, host, port)
