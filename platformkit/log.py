"""Progress lines of the tools, each prefixed with its tool's name (`deploy: ...`)."""

from __future__ import annotations

from collections.abc import Callable


def prefixed(prefix: str) -> Callable[[str], None]:
    def log(message: str) -> None:
        print(f"{prefix}: {message}", flush=True)
    return log
