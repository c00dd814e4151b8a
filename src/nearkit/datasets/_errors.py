"""The errors raised by :mod:`nearkit.datasets`; each message says what to do next."""

from __future__ import annotations


class DatasetNotFoundError(FileNotFoundError):
    """A dataset file is in none of the places searched and could not be downloaded.

    The message names the file, every folder searched and the pinned URL(s) to fetch it from.
    """


class DownloadError(DatasetNotFoundError):
    """Downloading a missing dataset file failed (network error, HTTP error).

    A subclass of :class:`DatasetNotFoundError`: the file is still missing.
    """


class ChecksumError(ValueError):
    """A file's sha256 (or git blob id) is not the recorded one; the file is refused.

    The message names the file, the checksum found and the checksum expected.
    """


class SchemaError(ValueError):
    """A table does not have the columns (or the kind of values) a dataset needs.

    The message names the missing columns, or the column whose values are wrong.
    """
