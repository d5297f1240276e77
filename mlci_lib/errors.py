"""Typed errors raised by the library.

Every error mlci raises subclasses :class:`MlciError`. The message is one line that names the
file, column or option at fault and says how to fix it; the CLI prints it as-is and exits with
``exit_code``. Library users catch :class:`MlciError` (or a subclass) and decide for themselves.
"""

from __future__ import annotations


class MlciError(Exception):
    """Base class of every error mlci raises on purpose."""

    #: Exit code the CLI uses for this error: 2 means bad usage or bad input.
    exit_code: int = 2
    #: Short title for CI annotations (``::error title=...::``).
    title: str = "mlci error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = " ".join(message.split())
        self.hint = " ".join(hint.split()) if hint else None
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The message and its fix on one line, as the CLI prints it."""
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(MlciError):
    """An option or argument is missing, unknown or contradicts another one."""

    title = "mlci usage error"


class InputError(MlciError):
    """An input file or value is missing, empty, malformed or of the wrong type."""

    title = "mlci input error"


class ConfigError(InputError):
    """A configuration file (gate rules, suite, pipeline config) is invalid."""

    title = "mlci config error"


class ModelLoadError(InputError):
    """A model file cannot be loaded, or may not be loaded under the safety rules."""

    title = "mlci model error"


class UnsafeModelError(ModelLoadError):
    """Loading the model would run arbitrary code (pickle) or needs a type nobody allowed."""

    title = "mlci unsafe model"


class ServiceError(MlciError):
    """A service mlci talks to (tracking server, Docker engine, image registry, GitHub) failed."""

    title = "mlci service error"


class CheckFailed(MlciError):
    """A precondition check failed, e.g. pushing a model whose verdict did not pass (exit code 1)."""

    exit_code = 1
    title = "mlci check failed"
