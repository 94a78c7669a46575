"""OpenAI's Images API values: the ones its SDK allows for each enumerated parameter, and the gpt-image
parameters the gateway carries in ``ImageRequest.extra``.

The values are openai-python's (3.63, ``types/image_generate_params.py``, ``image_edit_params.py``);
tests/unit/test_openai_sdk_conformance.py compares them with the installed SDK, so an SDK that adds
a value fails the tests until it is added here.

``complexity``, ``frame_count`` and ``frame_duration_ms`` (GIF output) and ``svg`` (SVG authoring)
are parameters of the gpt-image models only, so the gateway keeps them in ``extra`` under OpenAI's
names: the OpenAI Images adapter sends them to the models that take them, and every other adapter
refuses them by name, as it does any parameter it has no use for. ``openai_extras`` checks them once
at the edge (a 400 naming the field before any call) and reads the multipart spelling of ``svg``
(``svg[model]``, ``svg[reasoning][effort]``) and the form's text numbers into the JSON shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from imagegateway_server.domain.errors import InvalidArgument

# Enumerated parameters and their values as OpenAI takes them. ``quality`` lists every tier a
# caller may ask for (``standard``/``hd`` are dall-e's, translated for other models).
OPENAI_VALUES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "quality": frozenset({"low", "medium", "high", "xhigh", "max", "auto", "standard", "hd"}),
        "background": frozenset({"transparent", "opaque", "auto"}),
        "moderation": frozenset({"low", "auto"}),
        "output_format": frozenset({"png", "webp", "jpeg", "gif", "svg"}),
        "input_fidelity": frozenset({"high", "low"}),
        "complexity": frozenset({"low", "medium", "high"}),
        "response_format": frozenset({"url", "b64_json"}),
        "style": frozenset({"vivid", "natural"}),
    }
)
SVG_REASONING_EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh", "max"})
# GIF output: 2-16 frames (OpenAI's default 9), each shown for frame_duration_ms (default 200).
MIN_FRAME_COUNT, MAX_FRAME_COUNT = 2, 16
# Output formats that come as several frames or as text: neither streams nor takes output_compression.
STILL_RASTER_FORMATS = frozenset({"png", "webp", "jpeg"})

# The gpt-image parameters carried in ``ImageRequest.extra`` (see the module docstring).
OPENAI_EXTRA_PARAMS = frozenset({"complexity", "frame_count", "frame_duration_ms", "svg"})
# Parameters the gateway checks against OPENAI_VALUES at the edge whatever the provider: only OpenAI
# has them. ``background`` and ``output_format`` are shared with other providers (who take other
# values), so the OpenAI adapter checks those per target.
EDGE_CHECKED = ("moderation", "input_fidelity")

_SVG_MODEL = "svg[model]"
_SVG_EFFORT = "svg[reasoning][effort]"


def allowed_values(name: str) -> str:
    """OpenAI's values for ``name`` as an error message lists them: ``'auto', 'opaque', 'transparent'``."""
    return ", ".join(repr(value) for value in sorted(OPENAI_VALUES[name]))


def check_value(name: str, value: str | None) -> None:
    """InvalidArgument naming ``name`` unless ``value`` is one OpenAI takes for it (None: not sent)."""
    if value is not None and value not in OPENAI_VALUES[name]:
        raise InvalidArgument(
            f"must be one of {allowed_values(name)}, got {value[:40]!r}", param=name, code="invalid_value"
        )


def openai_extras(extra: Mapping[str, Any]) -> Mapping[str, Any]:
    """``extra`` with OpenAI's gpt-image parameters checked and in their JSON shape; InvalidArgument
    naming the field. Returns ``extra`` itself when it holds none of them."""
    if not (OPENAI_EXTRA_PARAMS & extra.keys() or _SVG_MODEL in extra or _SVG_EFFORT in extra):
        return extra
    out = dict(extra)
    _svg_from_form(out)
    if (complexity := out.get("complexity")) is not None:
        if not isinstance(complexity, str):
            raise InvalidArgument("must be a string", param="complexity", code="invalid_type")
        check_value("complexity", complexity)
    for name, low, high in (
        ("frame_count", MIN_FRAME_COUNT, MAX_FRAME_COUNT),
        ("frame_duration_ms", 0, None),
    ):
        if name in out:
            out[name] = _integer(name, out[name], low, high)
    if "svg" in out:
        out["svg"] = _svg(out["svg"])
    return MappingProxyType(out)


def _svg_from_form(out: dict[str, Any]) -> None:
    """Multipart's ``svg[model]`` and ``svg[reasoning][effort]`` as the JSON object ``svg``."""
    model = out.pop(_SVG_MODEL, None)
    effort = out.pop(_SVG_EFFORT, None)
    if model is None and effort is None:
        return
    if "svg" in out:
        raise InvalidArgument("send svg as one object or as svg[...] fields, not both", param="svg")
    svg: dict[str, Any] = {}
    if model is not None:
        svg["model"] = model
    if effort is not None:
        svg["reasoning"] = {"effort": effort}
    out["svg"] = svg


def _integer(name: str, value: Any, low: int, high: int | None) -> int:
    if isinstance(value, str) and len(value) < 12:
        try:
            value = int(value)  # a multipart form's text
        except ValueError:
            raise InvalidArgument("must be an integer", param=name, code="invalid_type") from None
    elif isinstance(value, float) and value.is_integer():
        value = int(value)  # a protobuf Struct's number
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument("must be an integer", param=name, code="invalid_type")
    if value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"at least {low}"
        shown = str(value) if abs(value) < 10**12 else "a larger number"  # never echo a 300-digit value
        raise InvalidArgument(f"must be an integer {span}, got {shown}", param=name, code="invalid_value")
    return value


def _svg(value: Any) -> dict[str, Any]:
    """OpenAI's ``svg`` object: ``model`` (the SVG author, a string) and ``reasoning.effort``."""
    if not isinstance(value, Mapping):
        raise InvalidArgument("must be an object", param="svg", code="invalid_type")
    unknown = sorted(set(value) - {"model", "reasoning"})
    if unknown:
        raise InvalidArgument("is not a field of svg", param=f"svg.{unknown[0]}", code="unknown_parameter")
    svg: dict[str, Any] = {}
    if (model := value.get("model")) is not None:
        if not isinstance(model, str) or not model:
            raise InvalidArgument("must be a non-empty string", param="svg.model", code="invalid_type")
        svg["model"] = model
    reasoning = value.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, Mapping) or set(reasoning) - {"effort"}:
            raise InvalidArgument("must be an object with only 'effort'", param="svg.reasoning")
        effort = reasoning.get("effort")
        if effort is not None and (not isinstance(effort, str) or effort not in SVG_REASONING_EFFORTS):
            raise InvalidArgument(
                f"must be one of {', '.join(repr(e) for e in sorted(SVG_REASONING_EFFORTS))}",
                param="svg.reasoning.effort",
                code="invalid_value",
            )
        svg["reasoning"] = {"effort": effort} if effort is not None else {}
    return svg
