class StageError(ValueError):
    """Bad input or settings: the message names the file and what is wrong."""
