"""Exception types that carry messages a user can act on.

The window and the command line catch these and show the message; anything else that
escapes is a bug, not a user error.
"""


class MarginExplorerError(Exception):
    """Base class of every error core raises on purpose."""


class ConfigError(MarginExplorerError, ValueError):
    """A config or spec field is missing, unknown, of the wrong type or impossible.

    The message starts with the dotted path of the field, e.g. ``optimizer.lr: ...``.
    """


class DatasetError(MarginExplorerError, ValueError):
    """A dataset (file or array) cannot be used; the message names the row or field."""


class RunFileError(MarginExplorerError, OSError):
    """A run file is missing, not a run, truncated, or of a newer format version."""


class TrainingError(MarginExplorerError, RuntimeError):
    """Training cannot start or continue for a reason the user can fix (device, dtype...)."""


class RunFileWriteError(RunFileError):
    """Writing a run file stopped part way: a full disk, an I/O error. When ``hdf5_unusable`` is
    set, HDF5 failed inside a write: the process must not call it again, not even at exit (h5py
    can crash), so the command line ends the process right after its message."""

    hdf5_unusable = False
