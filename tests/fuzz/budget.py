"""How many cases each fuzz test generates, scaled in one place.

The counts are sized so the fuzz package stays around a minute on a 2-core CI machine while the
suite as a whole generates well over 50,000 cases. ``IMAGEGW_FUZZ_SCALE`` multiplies every count,
for a longer hunt on a developer machine (``IMAGEGW_FUZZ_SCALE=20 pytest tests/fuzz``).
"""

from __future__ import annotations

import os

from hypothesis import settings

SCALE = float(os.environ.get("IMAGEGW_FUZZ_SCALE", "1") or "1")


def cases(count: int) -> settings:
    """Settings for a test that should try ``count`` cases (times the scale), on the loaded profile."""
    return settings(max_examples=max(1, round(count * SCALE)))
