"""Translates one request for the model an adapter is about to call, or refuses it naming the parameter.

Run by each adapter before it builds its HTTP request, from its provider's ``ModelSpec`` tables
(``model_spec``; each provider folder's ``models`` module):

1. ``model``: an enabled alias (``model_aliases``) replaces it with its successor and rewrites the
   values its ``params`` list.
2. ``n``: above the model's limit is refused; on a one-image-per-call model, n > 1 fans out.
3. ``size``: an allowed size passes unchanged; another becomes the nearest allowed size (``sizes``),
   or, for a model sized by aspect ratio, the nearest ratio. ``auto`` is sent to models that take it
   and otherwise means the provider's default (not a translation).
4. ``quality``: mapped to the model's equivalent (possibly another parameter: Stability v1 ``steps``)
   or refused when it has none.
5. ``style``: passed to the models that take the value, refused elsewhere.

Every change is noted (``size=1792x1024->1344x768``) and reported to the caller. In strict mode
(``UpstreamTarget.strict``) each change is instead a BAD_REQUEST naming the parameter. Parameters a
model does not take at all are left to the adapter's own checks, which refuse them by name. A
model without a table (an OpenAI model newer than these tables) is sent as given.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any

from imagegateway_server.domain.errors import ProviderError
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.domain.result import ImageResult
from imagegateway_server.providers.kit.errors import refuse_parameter
from imagegateway_server.providers.kit.model_aliases import NO_ALIASES, ModelAliases
from imagegateway_server.providers.kit.model_spec import ModelSpec, SpecOf
from imagegateway_server.providers.kit.sizes import AUTO, AspectRatios, format_size, requested_size

_STRICT = "strict mode refuses to translate it"


@dataclasses.dataclass(frozen=True, slots=True)
class Translation:
    """What to send for one request and what was changed to get there.

    ``request.model`` is the model to call (an alias already resolved); ``fan_out`` says the model
    makes one image per call, so ``request.n`` calls are made; ``expected_size`` is the WxH asked of
    the provider ("" when the provider picks), reported for images whose pixels were not seen.
    """

    provider: str
    request: ImageRequest
    notes: tuple[str, ...] = ()
    fan_out: bool = False
    expected_size: str = ""

    @property
    def model(self) -> str:
        return self.request.model or ""

    def finish(self, result: ImageResult) -> ImageResult:
        """``result`` with each image labelled with its provider, model and size, the notes attached, and
        the size and quality sent upstream (what a per-image price is billed by)."""
        images = tuple(
            dataclasses.replace(
                image,
                provider=self.provider,
                model=result.model or self.model,
                size=image.size
                or (format_size(image.width, image.height) if image.width and image.height else self.expected_size),
            )
            for image in result.images
        )
        return dataclasses.replace(
            result,
            images=images,
            translations=self.notes,
            sent_size=self.expected_size,
            sent_quality=self.request.quality,
        )


def translate(
    request: ImageRequest,
    *,
    provider: str,
    model: str,
    spec_of: SpecOf,
    strict: bool = False,
    aliases: ModelAliases = NO_ALIASES,
) -> Translation:
    """Translates ``request`` for ``model`` on ``provider``; raises ProviderError(BAD_REQUEST) naming a
    parameter the model cannot take, or, in strict mode, any parameter it would have to change."""
    step = _Steps(provider, strict, model)
    request = step.alias(request, aliases)
    spec = spec_of(step.model)
    if spec is None:
        return Translation(provider, request, tuple(step.notes), expected_size=request.size or "")
    fan_out = step.n(request, spec)
    request, expected = step.size(request, spec)
    request = step.quality(request, spec)
    step.style(request, spec)
    return Translation(provider, request, tuple(step.notes), fan_out, expected)


class _Steps:
    """One translation in progress: the notes so far and the refusals' wording."""

    def __init__(self, provider: str, strict: bool, model: str) -> None:
        self.provider = provider
        self.strict = strict
        self.model = model
        self.label = repr(model)
        self.notes: list[str] = []

    def refuse(self, param: str, message: str, code: str = "invalid_value") -> ProviderError:
        return refuse_parameter(self.provider, param, message, code)

    def note(self, param: str, old: object, new: object, why: str) -> None:
        """Records a change, or refuses it in strict mode."""
        if self.strict:
            raise self.refuse(param, f"{old} {why} ({param}={old}->{new}); {_STRICT}")
        self.notes.append(f"{param}={old}->{new}")

    def alias(self, request: ImageRequest, aliases: ModelAliases) -> ImageRequest:
        alias = aliases.lookup(self.provider, self.model)
        if alias is None:
            return dataclasses.replace(request, model=self.model) if request.model != self.model else request
        self.note("model", self.model, alias.successor, f"is served by its successor {alias.successor} here")
        self.label = f"{alias.successor!r} (the successor of {self.model!r})"
        self.model = alias.successor
        changes: dict[str, Any] = {"model": alias.successor}
        for param, values in alias.params.items():
            current = getattr(request, param)
            if current is None or current not in values:
                continue
            new = values[current]
            self.note(param, current, new if new is not None else "omitted", f"has no equivalent on {self.label}")
            changes[param] = new
        return dataclasses.replace(request, **changes)

    def n(self, request: ImageRequest, spec: ModelSpec) -> bool:
        if request.n > spec.max_n:
            raise self.refuse(
                "n", f"must be at most {spec.max_n} for {self.label}, got {request.n}", "integer_above_max_value"
            )
        if spec.one_per_call and request.n > 1:
            self.note("n", request.n, f"{request.n}x1", f"is more than the one image per call {self.label} makes")
            return True
        return False

    def size(self, request: ImageRequest, spec: ModelSpec) -> tuple[ImageRequest, str]:
        size = request.size
        rule = spec.sizes
        if size is None:
            return request, spec.default_size
        if size == AUTO:
            if isinstance(rule, AspectRatios) or not rule.auto:
                # "auto" asks for the provider's default, which is what sending no size gets.
                return dataclasses.replace(request, size=None), spec.default_size
            return request, ""
        width, height = requested_size(self.provider, size)
        if isinstance(rule, AspectRatios):
            ratio, exact = rule.nearest(width, height)
            if request.aspect_ratio is not None and request.aspect_ratio != ratio:
                raise self.refuse("size", f"{size!r} conflicts with aspect_ratio {request.aspect_ratio!r}")
            if not exact:
                self.note("size", size, ratio, f"is not an aspect ratio {self.label} makes ({rule.describe})")
            # Sized by ratio alone: the provider picks the pixels, reported from the image itself.
            return dataclasses.replace(request, size=None, aspect_ratio=ratio), ""
        if rule.allows(width, height):
            exact_size = format_size(width, height)
            return (request if exact_size == size else dataclasses.replace(request, size=exact_size)), exact_size
        nearest = format_size(*rule.nearest(width, height))
        self.note("size", size, nearest, f"is not a size {self.label} makes ({rule.describe})")
        return dataclasses.replace(request, size=nearest), nearest

    def quality(self, request: ImageRequest, spec: ModelSpec) -> ImageRequest:
        asked = request.quality
        if asked is None:
            return request
        if asked not in spec.qualities:
            takes = ", ".join(spec.qualities)
            raise self.refuse("quality", f"{asked!r} has no equivalent on {self.label}; it takes: {takes}")
        setting = spec.qualities[asked]
        if setting is None:
            return dataclasses.replace(request, quality=None)
        if setting.param == "quality":
            if setting.value == asked:
                return request
            self.note("quality", asked, setting.value, f"is not a quality {self.label} takes")
            return dataclasses.replace(request, quality=str(setting.value))
        if setting.param in request.extra:
            raise self.refuse(
                "quality",
                f"{asked!r} sets {setting.param} on {self.label}, which the request also sets; send one of them",
            )
        self.note(
            "quality", asked, f"{setting.param}={setting.value}", f"is expressed as {setting.param} on {self.label}"
        )
        extra = MappingProxyType({**request.extra, setting.param: setting.value})
        return dataclasses.replace(request, quality=None, extra=extra)

    def style(self, request: ImageRequest, spec: ModelSpec) -> None:
        style = request.style
        if style is None:
            return
        if spec.styles is None:
            raise self.refuse(
                "style", f"is not supported by {self.label}, which has no equivalent", "unknown_parameter"
            )
        if style not in spec.styles:
            raise self.refuse(
                "style", f"{style!r} is not a style {self.label} takes; it takes: {', '.join(sorted(spec.styles))}"
            )
