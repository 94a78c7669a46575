"""Cache keys: one digest over the caller's tenant, the plan's routing identity and the normalised request.

The look-up happens before the router picks a target, so the key cannot name the target that will
serve. It names the whole plan instead: every leaf's path, provider, virtual key id, custom host,
``override_params``, ``strict`` and the identity of its inline credential (a fingerprint of the secret
fields plus the public ones). Two configs with the same targets share
entries (within one tenant); any change to any target starts afresh. What a virtual key id points to
can change without the plan changing (rotation, re-creation), so each entry also records the routing
identity of the target that served (provider, base URL, credential identity) and a hit is only served
while that target still has the same identity (see ``cache.py``).

Keys and fingerprints are SHA-256 digests: no secret, prompt or tenant id is ever readable in a key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import operator
from collections.abc import Mapping
from typing import Any

from imagegateway_server.domain.credentials import Credential
from imagegateway_server.domain.image_inputs import Operation
from imagegateway_server.domain.request import ImageRequest, ResponseFormat
from imagegateway_server.routing.plan import Leaf

KEY_VERSION = 1
# Fields that do not change the images: ``user`` is an end-user id for the provider's abuse monitoring,
# ``response_format`` is folded into ``delivery`` below, ``extra`` is added separately.
# ``images``, ``mask`` and ``markup`` are keyed by their SHA-256 digests, never their bytes; ``stream`` and
# ``partial_images`` change how the answer travels, not its images.
_NOT_IN_KEY = frozenset(
    {"user", "response_format", "extra", "operation", "images", "mask", "markup", "stream", "partial_images"}
)
_REQUEST_FIELDS = tuple(f.name for f in dataclasses.fields(ImageRequest) if f.name not in _NOT_IN_KEY)
_request_values = operator.attrgetter(*_REQUEST_FIELDS)
# Leaf fields that cannot change an answer (see plan_fingerprint).
_NOT_IN_PLAN = frozenset({"request_timeout_ms", "retry", "circuit_breaker", "name", "cache"})
_LEAF_FIELDS = tuple(f.name for f in dataclasses.fields(Leaf) if f.name not in _NOT_IN_PLAN)
_leaf_values = operator.attrgetter(*_LEAF_FIELDS)
# Values that are already canonical JSON scalars (the common case: the key is built on every request).
_PLAIN = (str, int, type(None))


def _digest(*parts: str) -> str:
    # NUL separators keep ("ab", "c") and ("a", "bc") apart.
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def credential_identity(credential: Credential | None) -> str:
    """A credential as far as answers go: the fingerprint of its secrets and its public fields (a
    region or a resource is another account); empty for none."""
    if credential is None:
        return ""
    return _dumps([credential.fingerprint(), dict(credential.public_fields())])


def routing_identity(provider: str, base_url: str | None, credential: Credential) -> str:
    """The account a target reaches: provider, base URL (empty for the provider's own) and credential identity."""
    return _digest(
        "imagegw-cache-identity", provider, (base_url or "").rstrip("/").lower(), credential_identity(credential)
    )


def _canonical(value: Any) -> Any:
    # protobuf Structs turn every JSON number into a float; 7 and 7.0 must give the same key.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def plan_fingerprint(leaves: list[Leaf]) -> str:
    """The routing identity of a whole plan, computed once per compiled plan.

    Every leaf field counts (a field added later counts too, the safe default) except those that
    cannot change an answer: timeouts, retries, breaker thresholds, names and the cache policy itself.
    """
    described = [
        {
            name: credential_identity(value) if name == "credential" else _canonical(value)
            for name, value in zip(_LEAF_FIELDS, _leaf_values(leaf), strict=True)
        }
        for leaf in leaves
    ]
    return _digest("imagegw-cache-plan", _dumps(described))


def request_material(request: ImageRequest) -> dict[str, Any]:
    """The normalised request: every field that changes the images, and the delivery class.

    Bytes (gRPC) and ``b64_json`` (REST) share entries; ``url`` requests keep their own, since a
    provider may answer them with URLs that hold no bytes to serve the others with.
    """
    material: dict[str, Any] = {
        name: value if type(value) in _PLAIN else _canonical(value)
        for name, value in zip(_REQUEST_FIELDS, _request_values(request), strict=True)
    }
    material["extra"] = _canonical(request.extra) if request.extra else {}
    if request.operation is not Operation.GENERATE:  # generations keep the keys they always had
        material["operation"] = request.operation.value
        material["images"] = [image.sha256 for image in request.images]
        material["mask"] = request.mask.sha256 if request.mask is not None else None
        if request.markup is not None:  # edits without markup keep the keys they always had
            material["markup"] = request.markup.sha256
    material["delivery"] = "url" if request.response_format is ResponseFormat.URL else "bytes"
    return material


def key_material(*, tenant: str, plan: str, request: ImageRequest, context: Mapping[str, str] | None = None) -> str:
    """The text a key is the digest of (exposed for tests: it must hold no secret either)."""
    return _dumps(
        {
            "v": KEY_VERSION,
            "tenant": tenant,
            "plan": plan,
            "request": request_material(request),
            "context": dict(context or {}),
        }
    )


def cache_key(*, tenant: str, plan: str, request: ImageRequest, context: Mapping[str, str] | None = None) -> str:
    """The key of one request. ``context`` holds caller inputs the plan routes or forwards by."""
    return _digest("imagegw-cache-key", key_material(tenant=tenant, plan=plan, request=request, context=context))
