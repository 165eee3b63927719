"""Exceptions with messages that say what to fix.

Errors that a retry cannot fix (config, templates, bad data) fail the task at once; a locked
warehouse is worth retrying.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException


class NexusError(AirflowException):
    """Base class of every error Nexus raises on purpose."""


class NexusConfigError(NexusError, AirflowFailException):
    """Configuration is invalid; retrying will not help."""


class NexusTemplateError(NexusError, AirflowFailException):
    """A template is missing or failed to render."""


class NexusDataError(NexusError, AirflowFailException):
    """A batch broke a contract (duplicate ids, undeclared entity types, bad values)."""


class WarehouseLockedError(NexusError):
    """The warehouse is locked by another writer; a retry may succeed."""


class WarehouseUnavailableError(NexusError):
    """The warehouse could not be reached; a retry may succeed."""


class WarehouseStatementError(NexusError):
    """A statement failed for a reason a retry may fix: a lost connection, a timeout on the
    warehouse's side, a deadlock or a resource limit, rather than the SQL or the data."""


class WarehouseCancelledError(NexusError):
    """A running statement was stopped because its task was killed or timed out; its transaction
    was rolled back, so a retry starts from where the last committed run left off."""


class NexusBusyError(NexusError):
    """Another run holds the source or layer; a retry later will succeed."""


class ResolutionCapError(NexusError, AirflowFailException):
    """Connected components did not converge within the configured number of rounds."""

    #: a node of the largest group still changing, when known (identity resolution names it)
    node: int | None = None


class SourcesFailedError(NexusError):
    """Some of the sources one task processes failed (the others were committed); a retry
    processes them again, and the committed ones find nothing new (unless a full refresh asked
    for everything again)."""

    def __init__(self, message: str, done: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        #: source name -> result of each source that committed
        self.done: dict[str, Any] = dict(done or {})


class SourcesRejectedError(SourcesFailedError, AirflowFailException):
    """Every source that failed in a task processing several did so for a reason a retry cannot
    fix (config, templates, data); the others were committed."""


class NexusRunFailedError(NexusError, AirflowFailException):
    """Raised by the run check when another task of the run failed."""
