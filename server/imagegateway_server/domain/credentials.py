"""A provider credential as one typed, immutable value, and the account a routing target resolves to.

A credential is more than one string for some providers (a region and a key pair, a resource name
and a token), so it is a set of named string fields, some of them secret. The provider's schema
(``providers/kit/spec.py``) builds one from raw fields and says which are secret; from then on the
gateway passes the value around whole. Secrets leave it only through ``value`` (for the adapter
that sends them upstream), ``secret_values`` (to scrub them from messages) and ``fingerprint``
(a digest that tells accounts apart without revealing them); no repr or str ever shows one.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping
from types import MappingProxyType

# The one field every provider so far calls its secret: what a REST ``Authorization: Bearer``, a gRPC
# ``provider_api_key``, a config's ``api_key`` and a virtual key's ``secret`` all fill in.
API_KEY = "api_key"
_FINGERPRINT_HEX_DIGITS = 32


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class Credential:
    """One provider's credential: named string fields, of which those in ``secret_names`` are secret.

    Build it with ``Credential.of`` (or a provider's ``CredentialSchema.parse``, which also checks
    the names); the fields are kept sorted by name so that equal credentials compare equal.
    """

    provider: str
    fields: tuple[tuple[str, str], ...]
    secret_names: frozenset[str]
    # Digests computed once here: breaker and cache identities ask for them on every attempt.
    _fingerprint: str = dataclasses.field(init=False, compare=False)
    _account_fingerprint: str = dataclasses.field(init=False, compare=False)
    # Asked for by every attempt, several times (each error path scrubs with it).
    _secret_values: tuple[str, ...] = dataclasses.field(init=False, compare=False)

    def __post_init__(self) -> None:
        material = "\0".join(
            [self.provider, *(f"{name}={value}" for name, value in self.fields if name in self.secret_names)]
        )
        fingerprint = hashlib.sha256(b"imagegw-credential\0" + material.encode()).hexdigest()[:_FINGERPRINT_HEX_DIGITS]
        public = "\0".join(f"{name}={value}" for name, value in self.fields if name not in self.secret_names)
        account = "sha256:" + hashlib.sha256(f"{fingerprint}\0{public}".encode()).hexdigest()[:12]
        object.__setattr__(self, "_fingerprint", fingerprint)
        object.__setattr__(self, "_account_fingerprint", account)
        secret_values = tuple(value for name, value in self.fields if name in self.secret_names and value)
        object.__setattr__(self, "_secret_values", secret_values)

    @classmethod
    def of(cls, provider: str, fields: Mapping[str, str], secret_names: Iterable[str]) -> Credential:
        """The credential of ``provider`` with ``fields``; names in ``secret_names`` are secret."""
        return cls(provider, tuple(sorted(fields.items())), frozenset(secret_names))

    def value(self, name: str) -> str | None:
        """The value of field ``name``, or None when the credential does not have it."""
        for field, value in self.fields:
            if field == name:
                return value
        return None

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the fields this credential has, sorted."""
        return tuple(name for name, _ in self.fields)

    def public_fields(self) -> Mapping[str, str]:
        """The fields that are not secret (a region, a project, a resource name): safe to show."""
        return MappingProxyType({name: value for name, value in self.fields if name not in self.secret_names})

    def secret_fields(self) -> Mapping[str, str]:
        """The secret fields by name: for sealing at rest and for the adapter only."""
        return MappingProxyType({name: value for name, value in self.fields if name in self.secret_names})

    def secret_values(self) -> tuple[str, ...]:
        """Every secret value, to scrub from any text that might echo one."""
        return self._secret_values

    def fingerprint(self) -> str:
        """A short, stable, non-reversible digest of the provider and the secret fields.

        Two credentials with the same secrets share it; nothing about a secret can be read from it.
        """
        return self._fingerprint

    def account_fingerprint(self) -> str:
        """A short tag of the provider account: the secret parts and the public fields (two regions
        of one key pair are two accounts as far as failures go); no secret can be read from it."""
        return self._account_fingerprint

    def __repr__(self) -> str:
        public = ", ".join(f"{name}={value!r}" for name, value in self.public_fields().items())
        hidden = ", ".join(f"{name}=***" for name in self.names if name in self.secret_names)
        return f"Credential({self.provider}; {', '.join(part for part in (public, hidden) if part)})"

    __str__ = __repr__


@dataclasses.dataclass(frozen=True, slots=True)
class ResolvedCredentials:
    """The provider account a routing target reaches: its provider, credential and effective base URL."""

    provider: str
    credential: Credential
    base_url: str | None

    def __repr__(self) -> str:
        return f"ResolvedCredentials({self.provider}, base_url={self.base_url})"
