"""The admin page: one self-contained HTML file (no CDN, no build step), shipped in the
package next to this module and served at the admin surface's root."""

from __future__ import annotations

import functools
from importlib import resources


@functools.cache
def page() -> bytes:
    return resources.files(__package__).joinpath("page.html").read_bytes()
