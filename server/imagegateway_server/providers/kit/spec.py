"""What a provider folder declares about itself: the ``ProviderSpec`` its ``spec`` module exposes as ``SPEC``.

The registry discovers the folders and reads their specs; nothing outside a provider's folder names
the provider. A spec says the canonical name and every other spelling callers may use, the public
hosts the upstream-host policy always allows over https, the default base URL, the file of its
prices, the model tables translation reads, how to make its adapter, and the credential it needs.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from imagegateway_server.domain.credentials import API_KEY, Credential
from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.providers.kit.interface import ProviderAdapter
from imagegateway_server.providers.kit.model_aliases import ModelAliases
from imagegateway_server.providers.kit.model_spec import SpecOf
from imagegateway_server.providers.kit.transport import UpstreamClient


@dataclasses.dataclass(frozen=True, slots=True)
class CredentialField:
    """One field of a provider credential: its name, whether it is a secret, whether it must be set.

    Secret fields are never shown back, logged or put in an error message; the others (a region, a
    project) may be.
    """

    name: str
    secret: bool
    required: bool
    # The form a value must have (matched whole), checked when a config or virtual key is saved,
    # and ``shape_hint`` saying it in words for the error; None: any non-empty string.
    shape: re.Pattern[str] | None = None
    shape_hint: str = ""
    # A check of what a value holds beyond its shape (the members of a JSON document), run when a
    # config or virtual key is saved: None when it is fine, else (the member path below the field,
    # "" for the field itself; what is wrong, in words that never quote the value).
    check: Callable[[str], tuple[str, str] | None] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class CredentialSchema:
    """The fields that make up one provider's credential, in the order they are asked for.

    ``exactly_one_of`` lists groups of field names of which a credential must set exactly one (an
    API key or a token, say); the fields of a group are declared not required on their own.
    ``requires`` lists, for a field, the fields that must be set whenever it is (an AWS secret key
    needs its access key id).
    """

    fields: tuple[CredentialField, ...]
    exactly_one_of: tuple[tuple[str, ...], ...] = ()
    requires: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __post_init__(self) -> None:
        names = [field.name for field in self.fields]
        if not names:
            raise ValueError("a credential schema needs at least one field")
        if len(set(names)) != len(names):
            raise ValueError(f"credential field names must be unique, got {names}")
        required = {field.name for field in self.fields if field.required}
        for group in self.exactly_one_of:
            if len(group) < 2 or not set(group) <= set(names) or set(group) & required:
                raise ValueError(f"an exactly-one-of group needs two or more declared, optional fields, got {group}")
        for name, needed in self.requires:
            if not {name, *needed} <= set(names) or not needed:
                raise ValueError(f"a requirement names undeclared fields or none: {name} requires {needed}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.fields)

    @property
    def secret_names(self) -> frozenset[str]:
        return frozenset(field.name for field in self.fields if field.secret)

    def parse(
        self,
        raw: Mapping[str, str],
        *,
        provider: str,
        param_prefix: str = "",
        param_names: Mapping[str, str] | None = None,
    ) -> Credential:
        """The ``provider`` credential made of ``raw`` fields; empty values count as unset.

        Raises InvalidArgument naming the field path (``param_prefix.name``, or ``param_names[name]``
        where the caller sent the field under another name, a header) for an unknown field, a
        missing required one, an exactly-one-of group with none or several set, or a field set
        without one it requires. Messages name fields, never their values.
        """
        names = param_names or {}

        def _path(name: str) -> str:
            return names.get(name) or _join(param_prefix, name)

        known = set(self.names)
        for name in sorted(raw):
            if name not in known:
                raise InvalidArgument(
                    f"is not a credential field of {provider}; expected one of {', '.join(self.names)}",
                    param=_path(name),
                )
        present = {name: value for name, value in raw.items() if value}
        for field in self.fields:
            if field.required and field.name not in present:
                raise InvalidArgument(f"is required for {provider}", param=_path(field.name))
        for group in self.exactly_one_of:
            chosen = [name for name in group if name in present]
            if len(chosen) != 1:
                how, named = (
                    ("none is set", group[0]) if not chosen else (f"{' and '.join(chosen)} are all set", chosen[-1])
                )
                raise InvalidArgument(
                    f"exactly one of {', '.join(group)} is required for {provider}; {how}",
                    param=_path(named),
                )
        for name, needed in self.requires:
            missing = [other for other in needed if name in present and other not in present]
            if missing:
                raise InvalidArgument(f"is required for {provider} when {name} is set", param=_path(missing[0]))
        for field in self.fields:
            value = present.get(field.name)
            if value is not None and field.shape is not None and not field.shape.fullmatch(value):
                # Named, never echoed: a secret field's value must not reach a message.
                raise InvalidArgument(
                    f"must be {field.shape_hint or 'well formed'} for {provider}", param=_path(field.name)
                )
            problem = field.check(value) if value is not None and field.check is not None else None
            if problem is not None:
                member, what = problem
                where = _path(field.name)
                raise InvalidArgument(f"{what} for {provider}", param=_join(where, member) if member else where)
        return Credential.of(provider, present, self.secret_names)


# A credential that is one secret API key: the common shape, and the one assumed where no provider
# schema is at hand (``compile_plan`` without a registry, as in tests that route to made-up providers).
API_KEY_SCHEMA = CredentialSchema((CredentialField(API_KEY, secret=True, required=True),))


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


class AdapterFactory(Protocol):
    """Makes a provider's adapter: on ``base_url`` (None: its default), with its own ``client``."""

    def __call__(
        self, *, base_url: str | None, client: UpstreamClient, max_body_bytes: int, aliases: ModelAliases
    ) -> ProviderAdapter: ...


@dataclasses.dataclass(frozen=True, slots=True)
class ProviderSpec:
    """One provider, as its folder declares it.

    ``name`` is the canonical name (in configs, logs, metrics); ``aliases`` are the other spellings
    callers may use (Portkey's), matched case-insensitively. ``public_hosts`` are the host names of
    its public API; ``*.suffix`` stands for every name below ``suffix`` (a provider with one host
    per customer account, as Azure OpenAI's ``{resource}.openai.azure.com``). ``prices_file`` is its
    part of the built-in price table (the shape of one entry of ``providers`` in ``core/pricing.py``),
    or None when it has no prices. ``credential_headers`` maps Portkey's request headers that carry
    a bare provider's credential fields (``x-portkey-azure-resource-name``) to the field each fills in.
    """

    name: str
    aliases: frozenset[str]
    public_hosts: frozenset[str]
    default_base_url: str
    make_adapter: AdapterFactory
    credentials: CredentialSchema
    model_spec: SpecOf
    prices_file: Path | None = None
    credential_headers: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        spellings = {self.name, *self.aliases}
        for spelling in sorted(spellings):
            # Callers' spellings are looked up stripped and lower-cased, so only those can ever match.
            if not spelling or spelling != spelling.lower() or any(c.isspace() for c in spelling):
                raise ValueError(f"provider {self.name!r}: {spelling!r} is not lower case without spaces")
        for host in sorted(self.public_hosts):
            # A wildcard only as the whole first label, over a suffix of two labels or more.
            if "*" in host and (not host.startswith("*.") or "*" in host[2:] or host[2:].count(".") < 1):
                raise ValueError(f"provider {self.name!r}: public host {host!r} may use '*' only as '*.domain.tld'")
        object.__setattr__(self, "aliases", frozenset(spellings - {self.name}))
        object.__setattr__(self, "public_hosts", frozenset(host.lower() for host in self.public_hosts))

    @property
    def spellings(self) -> frozenset[str]:
        """Every name the provider answers to: the canonical one and its aliases."""
        return self.aliases | {self.name}

    def read_prices(self) -> dict[str, Any] | None:
        """The decoded ``prices_file`` (None without one); ValueError naming the file when unreadable."""
        if self.prices_file is None:
            return None
        try:
            document = json.loads(self.prices_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"{self.name} prices {self.prices_file}: cannot be read: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise ValueError(f"{self.name} prices {self.prices_file}: not valid JSON: {exc}") from None
        if not isinstance(document, dict):
            raise ValueError(f"{self.name} prices {self.prices_file}: must be a JSON object")
        return document
