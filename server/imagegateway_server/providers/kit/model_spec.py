"""How one model takes the OpenAI-shaped parameters: its sizes, images per call, qualities and styles.

Each provider folder declares a ``ModelSpec`` per model (its ``models`` module) and a function from a
model name to its spec; ``translation.translate`` reads them to translate a request or refuse it.
The adapters keep their own lists of which parameters a model takes at all. ``auto`` as a quality
always means "the provider's default", which is not a translation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from types import MappingProxyType

from imagegateway_server.providers.kit.sizes import AspectRatios, SizeRule


@dataclasses.dataclass(frozen=True, slots=True)
class Setting:
    """The upstream parameter and value one asked-for value becomes (``quality=hd`` -> ``steps=50``)."""

    param: str
    value: str | int


@dataclasses.dataclass(frozen=True, slots=True)
class ModelSpec:
    """How one model takes the OpenAI-shaped parameters.

    ``qualities`` maps each quality value the model can honour to what is sent (None: nothing, the
    provider's default); a value not in it is refused. ``styles`` None means the model has no style.
    ``one_per_call`` models make one image per request, so ``n`` fans out into n calls.
    ``default_size`` is what the model makes when no size is sent, when that is fixed.
    """

    sizes: SizeRule | AspectRatios
    qualities: Mapping[str, Setting | None]
    styles: frozenset[str] | None = None
    one_per_call: bool = False
    max_n: int = 10
    default_size: str = ""


# A provider's look-up from a model name to its spec; None for a model it has no table for.
SpecOf = Callable[[str], ModelSpec | None]


def qualities(**values: Setting | None) -> Mapping[str, Setting | None]:
    """A read-only quality table: asked-for value -> what is sent (None: the provider's default)."""
    return MappingProxyType(values)


def step_qualities(param: str, low: int, standard: int, high: int) -> Mapping[str, Setting | None]:
    """The quality table of a diffusion model whose quality is its number of steps, sent as ``param``:
    ``low``, ``medium``/``standard`` and ``high``/``hd`` step counts (``auto``: the provider's default)."""
    return qualities(
        auto=None,
        low=Setting(param, low),
        medium=Setting(param, standard),
        standard=Setting(param, standard),
        high=Setting(param, high),
        hd=Setting(param, high),
    )
