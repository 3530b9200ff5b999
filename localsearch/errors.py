"""One error root. Problems with the user's files or environment derive from
UserFacingError and are recorded and shown; anything else is a bug."""


class LocalSearchError(Exception):
    """Root of every error localsearch raises on purpose."""


class UserFacingError(LocalSearchError):
    """A problem the user can act on (a file, a setting, the environment)."""


class ExtractionError(UserFacingError):
    """A file's text could not be extracted; the message is shown as the reason."""


class ModelError(UserFacingError):
    """The embedding model is missing, invalid or cannot be built."""


class StorageError(UserFacingError):
    """The index database cannot be opened or is from a newer version."""


class DiskFullError(StorageError):
    """The disk holding the index is full; nothing was half-written."""


class IndexBusyError(StorageError):
    """Another localsearch process is writing this index."""


class DamagedIndexError(StorageError):
    """The index database failed its integrity check."""
