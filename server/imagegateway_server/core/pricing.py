"""What a request cost, in US dollars, by a versioned price table per provider, model, quality and size.

The table is read and checked once at start; look-ups are dictionary reads. The built-in one is
assembled from ``prices.json`` next to this module (its version and currency) and each discovered
provider's own ``prices.json`` (its entry under ``providers``); a file IMAGEGW_PRICE_TABLE_FILE names
replaces it whole. Its shape::

    {"version": "...", "providers": {"openai": {
        "billed_error_kinds": [],                       # failed attempts the provider still bills
        "model_aliases": {"alias": "model"},
        "models": {"dall-e-3": {
            "default_quality": "standard", "default_size": "1024x1024",
            "quality_aliases": {"auto": "standard"},
            "prices": {"standard": {"1024x1024": 0.04, "*": ...}, "*": {...}}}}}}}

``"*"`` matches any quality or size. A model may also have ``"token_prices"``: USD per million
tokens of ``text_input``, ``image_input``, ``image_output`` and ``text_output`` (the gpt-image models
bill that way); then a model may have no per-image ``prices`` at all.

How a served request is priced, as the provider bills it:

- the provider reported ``usage`` and the model has token prices: each kind of token at its own
  rate (OpenAI's ``input_tokens_details`` split text from image input, ``output_tokens_details``
  image from text output; without the details, input counts as text and output as image);
- otherwise per image, by the size and quality sent upstream (after translation), never by what
  came back: a provider that returns a 64x64 image for a 1024x1024 request bills 1024x1024. Only
  when nothing was sent (``auto``, or a provider sized by aspect ratio) does the image's own size
  count, else the size asked for, else the model's default size; the quality is the one sent, else
  the one asked for (a target's ``override_params`` winning), else the model's default.

A dated snapshot the table does not name is priced as its undated model. A price the table does
not know is 0, with one warning per provider, model, quality and size, so a
missing row shows up in the process log instead of failing requests. A cache hit costs nothing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import threading
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagegateway_server.domain.errors import ErrorKind
from imagegateway_server.providers.registry import PROVIDER_SPECS

if TYPE_CHECKING:
    from imagegateway_server.domain.request import ImageRequest
    from imagegateway_server.domain.result import AttemptRecord, GeneratedImage, RoutedResult

log = logging.getLogger(__name__)

ANY = "*"
# Unknown look-ups are warned about once each; callers choose models and sizes, so the memory of
# what was already warned about is capped.
_MAX_WARNED = 1000


@dataclasses.dataclass(frozen=True, slots=True)
class ModelPrices:
    """The prices of one model: USD per image by quality, then size."""

    prices: Mapping[str, Mapping[str, float]]
    default_quality: str | None = None
    default_size: str | None = None
    quality_aliases: Mapping[str, str] = dataclasses.field(default_factory=dict)
    tokens: TokenPrices | None = None


TOKEN_KINDS = ("text_input", "image_input", "image_output", "text_output")
_PER_MILLION = 1_000_000


@dataclasses.dataclass(frozen=True, slots=True)
class TokenPrices:
    """USD per million tokens of each kind, as the gpt-image models are billed."""

    text_input: float
    image_input: float
    image_output: float
    text_output: float

    def cost(self, usage: Mapping[str, Any]) -> float:
        """USD for one answer's ``usage`` (OpenAI's shape; see the module docstring)."""
        counts = usage_counts(usage)
        billed = (
            counts["text_input"] * self.text_input
            + counts["image_input"] * self.image_input
            + counts["image_output"] * self.image_output
            + counts["text_output"] * self.text_output
        )
        return billed / _PER_MILLION


def usage_counts(usage: Mapping[str, Any]) -> dict[str, int]:
    """Tokens by kind from OpenAI's ``usage``; input without details is text, output without details image."""

    def count(value: Any) -> int:
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    input_details = usage.get("input_tokens_details")
    output_details = usage.get("output_tokens_details")
    counts = dict.fromkeys(TOKEN_KINDS, 0)
    if isinstance(input_details, Mapping):
        counts["text_input"] = count(input_details.get("text_tokens"))
        counts["image_input"] = count(input_details.get("image_tokens"))
    else:
        counts["text_input"] = count(usage.get("input_tokens"))
    if isinstance(output_details, Mapping):
        counts["image_output"] = count(output_details.get("image_tokens"))
        counts["text_output"] = count(output_details.get("text_tokens"))
    else:
        counts["image_output"] = count(usage.get("output_tokens"))
    return counts


# A model name with a release date appended (OpenAI's snapshots): priced as the undated model.
_DATED_SNAPSHOT = re.compile(r"^(?P<model>.+)-\d{4}-\d{2}-\d{2}$")


@dataclasses.dataclass(frozen=True, slots=True)
class ProviderPrices:
    """The models of one provider, the aliases of their names, and the failures it bills."""

    models: Mapping[str, ModelPrices]
    model_aliases: Mapping[str, str] = dataclasses.field(default_factory=dict)
    billed_error_kinds: frozenset[ErrorKind] = frozenset()

    def entry(self, name: str) -> ModelPrices | None:
        """The prices of the lower-cased model ``name``: its own, its alias's, or, for a dated snapshot
        the table does not name (``gpt-image-2.6-flare-2027-01-15``), its undated model's."""
        found = self._own(name)
        if found is None and (snapshot := _DATED_SNAPSHOT.match(name)):
            # One date only: the name is the caller's, and one of many dates must not recurse per date.
            return self._own(snapshot["model"])
        return found

    def _own(self, name: str) -> ModelPrices | None:
        return self.models.get(name) or self.models.get(self.model_aliases.get(name, ""))


class PriceTable:
    """Prices per provider, model, quality and size. Build with ``load_price_table``."""

    def __init__(self, providers: Mapping[str, ProviderPrices], version: str) -> None:
        self.version = version
        self._providers = dict(providers)
        self._warned: set[tuple[str, str, str, str]] = set()
        self._lock = threading.Lock()

    @classmethod
    def empty(cls) -> PriceTable:
        return cls({}, "empty")

    def models(self) -> frozenset[str]:
        """Every model name the table prices (aliases included), lowercase."""
        names: set[str] = set()
        for provider in self._providers.values():
            names.update(provider.models)
            names.update(provider.model_aliases)
        return frozenset(names)

    def unit_price(self, provider: str, model: str, size: str | None = None, quality: str | None = None) -> float:
        """USD for one image; 0 (warned once) when the table has no price for it."""
        price, why = self._price(provider, model, size, quality)
        if price is None:
            self._warn(provider, model.strip().lower(), *why)
            return 0.0
        return price

    def estimate(
        self, model: str | None, size: str | None, quality: str | None, n: int, *, provider: str = ""
    ) -> float:
        """USD that ``n`` images would cost, for budget checks before any call: 0 when the table does not
        know the price (without a warning; the served request is priced, and warned about, afterwards).
        Without a provider, the first provider that prices ``model`` is used."""
        if not model:
            return 0.0
        if not provider:
            name = model.strip().lower()
            provider = next(
                (p for p, table in self._providers.items() if name in table.models or name in table.model_aliases), ""
            )
        price, _ = self._price(provider, model, size, quality)
        return price * max(n, 1) if price is not None else 0.0

    def _price(
        self, provider: str, model: str, size: str | None, quality: str | None
    ) -> tuple[float | None, tuple[str, str, str]]:
        """The unit price, or None with (quality, size, why) saying what the table lacks."""
        size = (size or "").strip().lower()
        quality = (quality or "").strip().lower()
        model = model.strip().lower()
        table = self._providers.get(provider)
        entry = None
        if table is not None:
            entry = table.entry(model)
        if entry is None:
            return None, ("", "", "no prices for this model")
        quality = entry.quality_aliases.get(quality, quality) or (entry.default_quality or "")
        by_size = entry.prices.get(quality) if quality else None
        if by_size is None:
            by_size = entry.prices.get(ANY)
        if by_size is None:
            return None, (quality, size, "no prices for this quality")
        if not size or size == "auto":
            size = entry.default_size or ANY
        price = by_size.get(size)
        if price is None:
            price = by_size.get(ANY)
        if price is None:
            return None, (quality, size, "no price for this size")
        return price, ("", "", "")

    def token_prices(self, provider: str, model: str) -> TokenPrices | None:
        """The token rates of ``model`` on ``provider``; None when it is priced per image only."""
        table = self._providers.get(provider)
        if table is None:
            return None
        name = model.strip().lower()
        entry = table.entry(name)
        return entry.tokens if entry is not None else None

    def success_cost(self, routed: RoutedResult, request: ImageRequest) -> float:
        """USD for the images a served request got (billed failed attempts before it included)."""
        result = routed.result
        model = result.model or (routed.attempts[-1].model if routed.attempts else "")
        tokens = self.token_prices(routed.provider, model) if result.usage is not None else None
        if tokens is not None and result.usage is not None:
            total = tokens.cost(result.usage)
        else:
            overrides = routed.leaf.override_params
            quality = result.sent_quality or overrides.get("quality", request.quality)
            asked_size = overrides.get("size", request.size)
            total = sum(
                self.unit_price(routed.provider, model, result.sent_size or _image_size(image) or asked_size, quality)
                for image in result.images
            )
        return total + self.failed_attempts_cost(routed.attempts, request)

    def failed_attempts_cost(self, attempts: Iterable[AttemptRecord], request: ImageRequest) -> float:
        """USD for failed attempts whose provider bills that kind of failure (n images each)."""
        total = 0.0
        for attempt in attempts:
            if attempt.error_kind is None:
                continue
            table = self._providers.get(attempt.provider)
            if table is not None and attempt.error_kind in table.billed_error_kinds:
                total += request.n * self.unit_price(attempt.provider, attempt.model, request.size, request.quality)
        return total

    def _warn(self, provider: str, model: str, quality: str, size: str, why: str) -> None:
        key = (provider, model, quality, size)
        with self._lock:
            if key in self._warned or len(self._warned) >= _MAX_WARNED:
                return
            self._warned.add(key)
        log.warning(
            "price table %s: %s; counting 0 USD",
            self.version,
            why,
            extra={"provider": provider, "model": model, "quality": quality or "-", "size": size or "-"},
        )


def format_usd(amount: float) -> str:
    """A dollar amount as plain decimal text, to the micro-dollar: 0.04, 0.167, 0."""
    return f"{amount:.6f}".rstrip("0").rstrip(".")


def _image_size(image: GeneratedImage) -> str | None:
    return f"{image.width}x{image.height}" if image.width and image.height else None


def load_price_table(path: str | Path | None = None) -> PriceTable:
    """The table in ``path``, or the one shipped with the gateway; ValueError naming what is wrong."""
    if not path:
        return parse_price_table(built_in_price_document(), source="the built-in price table")
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read the price table {source}: {exc.strerror or exc}") from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{source} is not valid JSON: {exc}") from None
    return parse_price_table(document, source=source)


def built_in_price_document() -> dict[str, Any]:
    """The shipped table as one document: this package's ``prices.json`` with every provider's prices."""
    text = resources.files(__package__).joinpath("prices.json").read_text(encoding="utf-8")
    document = _object(json.loads(text), "the built-in price table")
    prices = {name: spec.read_prices() for name, spec in PROVIDER_SPECS.items()}
    return {**document, "providers": {name: body for name, body in prices.items() if body is not None}}


def parse_price_table(document: Any, *, source: str = "the price table") -> PriceTable:
    """Checks a decoded table and builds it; errors name the JSON path."""
    root = _object(document, source)
    version = root.get("version")
    if not isinstance(version, str) or not version:
        raise ValueError(f"{source}: version: must be a non-empty string")
    providers: dict[str, ProviderPrices] = {}
    for name, raw in _object(root.get("providers"), f"{source}: providers").items():
        where = f"{source}: providers.{name}"
        body = _object(raw, where)
        models = {
            model.lower(): _model(value, f"{where}.models.{model}")
            for model, value in _object(body.get("models"), f"{where}.models").items()
        }
        aliases = {
            k.lower(): v.lower() for k, v in _strings(body.get("model_aliases", {}), f"{where}.model_aliases").items()
        }
        for alias, target in aliases.items():
            if target not in models:
                raise ValueError(f"{where}.model_aliases.{alias}: names no model in models ({target!r})")
        kinds = body.get("billed_error_kinds", [])
        if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
            raise ValueError(f"{where}.billed_error_kinds: must be a list of error kind names")
        try:
            billed = frozenset(ErrorKind(k.upper()) for k in kinds)
        except ValueError:
            known = ", ".join(k.value for k in ErrorKind)
            raise ValueError(f"{where}.billed_error_kinds: names an unknown kind (known: {known})") from None
        providers[name] = ProviderPrices(models, aliases, billed)
    return PriceTable(providers, version)


def _model(raw: Any, where: str) -> ModelPrices:
    body = _object(raw, where)
    prices: dict[str, dict[str, float]] = {}
    for quality, sizes in _object(body.get("prices", {}), f"{where}.prices").items():
        row: dict[str, float] = {}
        for size, price in _object(sizes, f"{where}.prices.{quality}").items():
            if isinstance(price, bool) or not isinstance(price, int | float) or not math.isfinite(price) or price < 0:
                raise ValueError(f"{where}.prices.{quality}.{size}: must be a non-negative number of USD")
            row[size.lower()] = float(price)
        prices[quality.lower()] = row
    tokens = _token_prices(body.get("token_prices"), f"{where}.token_prices")
    if not prices and tokens is None:
        raise ValueError(f"{where}.prices: must price at least one quality (or give token_prices)")
    default_quality = body.get("default_quality")
    default_size = body.get("default_size")
    for field, value in (("default_quality", default_quality), ("default_size", default_size)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{where}.{field}: must be a string")
    aliases = {
        k.lower(): v.lower() for k, v in _strings(body.get("quality_aliases", {}), f"{where}.quality_aliases").items()
    }
    return ModelPrices(
        prices,
        default_quality.lower() if default_quality else None,
        default_size.lower() if default_size else None,
        aliases,
        tokens,
    )


def _token_prices(raw: Any, where: str) -> TokenPrices | None:
    if raw is None:
        return None
    body = _object(raw, where)
    unknown = sorted(set(body) - set(TOKEN_KINDS))
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: unknown token kind (known: {', '.join(TOKEN_KINDS)})")
    rates: dict[str, float] = {}
    for kind in TOKEN_KINDS:
        price = body.get(kind)
        if isinstance(price, bool) or not isinstance(price, int | float) or not math.isfinite(price) or price < 0:
            raise ValueError(f"{where}.{kind}: must be a non-negative number of USD per million tokens")
        rates[kind] = float(price)
    return TokenPrices(**rates)


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: must be a JSON object")
    return value


def _strings(value: Any, where: str) -> dict[str, str]:
    mapping = _object(value, where)
    if not all(isinstance(v, str) for v in mapping.values()):
        raise ValueError(f"{where}: every value must be a string")
    return mapping
