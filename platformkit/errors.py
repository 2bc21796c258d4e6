"""The one exception type of the platform's tools: the CLI prints its message as one line,
`<tool>: error: ...`, and exits 1 (conda-pack's shape: modules raise, only the CLI exits)."""


class PlatformError(Exception):
    """Something the user can act on, named in the message; nothing was left half done."""
