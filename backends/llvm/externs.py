"""External functions native code calls through the entry's ``fns`` argument.

Their addresses are looked up at run time (never baked into code), so a compiled
object can be cached on disk and reloaded in another process.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

#: name -> resolver returning the function's address in this process
RESOLVERS: dict[str, Callable[[], int]] = {}
NAMES: list[str] = []


def register(name: str) -> Callable[[Callable[[], int]], Callable[[], int]]:
    def add(resolver: Callable[[], int]) -> Callable[[], int]:
        RESOLVERS[name] = resolver
        NAMES.append(name)
        return resolver
    return add


@functools.lru_cache(maxsize=1)
def addresses() -> tuple[int, ...]:
    """The address of every external function, in the order of ``NAMES``."""
    return tuple(RESOLVERS[name]() for name in NAMES)
