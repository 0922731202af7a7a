"""The project's user-facing error type.

:class:`NNiTError` is a problem with what the user gave: an argument, a file, a checkpoint, a configuration
that does not fit. The ``nnit`` command prints it as one line and exits with status 2; any other exception
is a bug and keeps its traceback. Every module's own error type (``TaskError``, ``ArchitectureError``,
``CheckpointError``, ``APIError``, ...) derives from it. It is a ``ValueError``, so callers catching
``ValueError`` keep working.
"""


class NNiTError(ValueError):
    """A problem with the caller's input (printed as one line by the ``nnit`` command, exit status 2)."""
