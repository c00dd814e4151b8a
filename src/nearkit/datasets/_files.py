"""Finding, verifying and downloading the dataset files.

Places searched, in order: the ``data_home`` argument, the ``NEARKIT_DATA`` environment
variable, then the per-user cache directory (:func:`user_cache_dir`).  A missing file is
downloaded from its pinned URL ``<base>/<repo>/<commit>/<path>``, where ``<base>`` is
``NEARKIT_DATA_URL`` if set, else ``https://raw.githubusercontent.com``.  Downloads go to a
temporary name in the destination folder, are verified, and only then renamed into place.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from nearkit.datasets._errors import ChecksumError, DatasetNotFoundError, DownloadError
from nearkit.datasets._registry import DatasetSpec

logger = logging.getLogger("nearkit.datasets")

DEFAULT_BASE_URL = "https://raw.githubusercontent.com"
_CHUNK = 1 << 16
_TIMEOUT_SECONDS = 60


def user_cache_dir() -> Path:
    """The per-user cache folder for dataset files.

    ``$XDG_CACHE_HOME/nearkit`` when ``XDG_CACHE_HOME`` is set (on any platform), otherwise
    ``~/Library/Caches/nearkit`` on macOS, ``%LOCALAPPDATA%\\nearkit\\Cache`` on Windows and
    ``~/.cache/nearkit`` elsewhere.
    """
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "nearkit"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "nearkit"
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "nearkit" / "Cache"
    return Path.home() / ".cache" / "nearkit"


def search_dirs(data_home: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """The folders searched for dataset files, in order, each with where it came from."""
    dirs = []
    if data_home is not None:
        dirs.append(("data_home argument", Path(data_home).expanduser()))
    if os.environ.get("NEARKIT_DATA"):
        dirs.append(("NEARKIT_DATA", Path(os.environ["NEARKIT_DATA"]).expanduser()))
    dirs.append(("user cache", user_cache_dir()))
    return dirs


def source_urls(spec: DatasetSpec, base_url: str | None = None) -> list[str]:
    """The pinned URL of each part of a dataset file."""
    base = (base_url or os.environ.get("NEARKIT_DATA_URL") or DEFAULT_BASE_URL).rstrip("/")
    return [
        f"{base}/{spec.repo}/{spec.commit}/{urllib.parse.quote(part.path)}" for part in spec.parts
    ]


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def git_blob_of(path: str | os.PathLike) -> str:
    """The id ``git hash-object`` prints for a file: ``sha1(b"blob <size>\\0" + content)``."""
    digest = hashlib.sha1(b"blob %d\0" % os.path.getsize(path))
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(spec: DatasetSpec, path: str | os.PathLike) -> tuple[str, str]:
    """Verify a file: ``(status, sha256)`` with status ``"verified"``, ``"full"`` or ``"corrupt"``.

    ``"full"`` is the full original of a subset dataset, recognised by its git blob id.
    """
    digest = sha256_of(path)
    if digest == spec.sha256:
        return "verified", digest
    if spec.full_git_blob is not None and git_blob_of(path) == spec.full_git_blob:
        return "full", digest
    return "corrupt", digest


def find_file(spec: DatasetSpec, data_home: str | os.PathLike | None = None) -> Path | None:
    """The first existing copy of a dataset file in :func:`search_dirs`, or ``None``."""
    for _, folder in search_dirs(data_home):
        candidate = folder / spec.filename
        if candidate.is_file():
            return candidate
    return None


def checksum_error(spec: DatasetSpec, path: str | os.PathLike, found: str, *, what: str) -> str:
    """The message of a :class:`ChecksumError` for a file of ``spec``."""
    message = (
        f"refusing {what} {path}: its sha256 is {found}, but {spec.filename} must have sha256 "
        f"{spec.sha256} (the copy of {spec.repo} at commit {spec.commit})"
    )
    if spec.full_git_blob is not None:
        message += (
            f", or be the full {spec.full_n_rows:,}-row original with git blob "
            f"{spec.full_git_blob}"
        )
    return message + ". The file is damaged or a different version: delete it so that " + (
        "nearkit downloads a verified copy (`nearkit datasets --download`)."
    )


def locate(
    spec: DatasetSpec,
    data_home: str | os.PathLike | None = None,
    *,
    download: bool = True,
    base_url: str | None = None,
) -> tuple[Path, str, str]:
    """Find (or download) and verify a dataset file: ``(path, status, sha256)``.

    Raises
    ------
    ChecksumError
        If the first copy found is neither the recorded file nor (Spotify) the full original.
    DatasetNotFoundError
        If no copy exists and ``download`` is false.
    DownloadError
        If no copy exists and downloading it failed.
    """
    path = find_file(spec, data_home)
    if path is None:
        if not download:
            raise DatasetNotFoundError(_not_found_message(spec, data_home, base_url))
        try:
            path = fetch(spec, data_home, base_url=base_url)
        except DownloadError as exc:
            raise DownloadError(
                f"{exc} {spec.filename} is in none of the folders searched: {_searched(data_home)}."
            ) from exc
    status, digest = check_file(spec, path)
    if status == "corrupt":
        raise ChecksumError(checksum_error(spec, path, digest, what="file"))
    return path, status, digest


def _searched(data_home) -> str:
    return "; ".join(f"{folder} ({label})" for label, folder in search_dirs(data_home))


def _not_found_message(spec: DatasetSpec, data_home, base_url) -> str:
    searched = _searched(data_home)
    urls = " + ".join(source_urls(spec, base_url))
    how = "download it" if len(spec.parts) == 1 else (
        "download these files, join them (dropping the header line of all but the first)"
    )
    return (
        f"dataset file {spec.filename} not found and downloading is off (download=False). "
        f"Searched: {searched}. Either allow downloading (download=True, or run "
        f"`nearkit datasets --download`), or {how} and save it as {spec.filename} in one of "
        f"those folders: {urls}"
    )


def download_dir(data_home: str | os.PathLike | None = None) -> Path:
    """Where a missing file is saved: the first of :func:`search_dirs` that is writable.

    A folder that does not exist counts when it could be created; nothing is created here.
    """
    for _, folder in search_dirs(data_home):
        if _could_write(folder):
            return folder
    searched = ", ".join(str(folder) for _, folder in search_dirs(data_home))
    raise DownloadError(f"no writable folder to download into (tried {searched}); pass data_home")


def _could_write(folder: Path) -> bool:
    """Whether ``folder`` is a writable folder, or its nearest existing ancestor is one."""
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    return existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)


def fetch(
    spec: DatasetSpec,
    data_home: str | os.PathLike | None = None,
    *,
    base_url: str | None = None,
) -> Path:
    """Download a dataset file from its pinned URL(s), verify it and move it into place.

    Each part is checked against its git blob id, the parts are joined (the header line of
    every part after the first is dropped), and the result is checked against the recorded
    sha256 before it is renamed to its final name.  Nothing is left behind on failure, not
    even the folders created to download into (a mistyped ``$NEARKIT_DATA`` stays absent).
    """
    folder = download_dir(data_home)
    created = _make_folders(folder)
    try:
        _fetch_into(spec, folder / spec.filename, source_urls(spec, base_url))
    except BaseException:
        _remove_folders(created)
        raise
    return folder / spec.filename


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created, deepest first."""
    created = list(itertools.takewhile(lambda path: not path.exists(), [folder, *folder.parents]))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the folder {folder} to download into: {exc}") from exc
    return created


def _remove_folders(created: list[Path]) -> None:
    """Remove the folders :func:`_make_folders` created, unless something else was put there."""
    for folder in created:
        try:
            folder.rmdir()
        except OSError:
            return


def _fetch_into(spec: DatasetSpec, destination: Path, urls: list[str]) -> None:
    """Download the parts at ``urls`` next to ``destination``, verify, join and rename."""
    temporaries: list[Path] = []
    try:
        for part, url in zip(spec.parts, urls):
            temporary = _temporary(destination, suffix=".part")
            temporaries.append(temporary)
            _download(url, temporary, label=Path(part.path).name)
            blob = git_blob_of(temporary)
            if blob != part.git_blob:
                raise ChecksumError(
                    f"refusing the download of {url}: its git blob id is {blob}, expected "
                    f"{part.git_blob}. The server sent a different or damaged file; nothing "
                    f"was saved as {destination}."
                )
        if len(temporaries) == 1:
            joined = temporaries[0]
        else:
            joined = _temporary(destination, suffix=".joined")
            temporaries.append(joined)
            _join_csv(temporaries[:-1], joined)
        digest = sha256_of(joined)
        if digest != spec.sha256:
            raise ChecksumError(checksum_error(spec, " + ".join(urls), digest, what="download of"))
        os.replace(joined, destination)
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
    logger.info("saved verified %s to %s", spec.filename, destination)


def _temporary(destination: Path, *, suffix: str) -> Path:
    handle, name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=suffix, dir=destination.parent
    )
    os.close(handle)
    return Path(name)


def _join_csv(parts: list[Path], output: Path) -> None:
    """Concatenate CSV files, keeping only the first file's header line."""
    with open(output, "wb") as out:
        for index, part in enumerate(parts):
            with open(part, "rb") as handle:
                if index > 0:
                    handle.readline()
                while chunk := handle.read(_CHUNK):
                    out.write(chunk)


def _download(url: str, output: Path, *, label: str) -> None:
    """Stream ``url`` into ``output`` with a progress bar on a terminal (and a log line)."""
    logger.info("downloading %s", url)
    console = Console(stderr=True)
    try:
        with (
            urllib.request.urlopen(url, timeout=_TIMEOUT_SECONDS) as response,
            open(output, "wb") as out,
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=console,
                transient=True,
                disable=not console.is_terminal,
            ) as progress,
        ):
            size = response.headers.get("Content-Length")
            task = progress.add_task(f"downloading {label}", total=int(size) if size else None)
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                progress.update(task, advance=len(chunk))
    except (urllib.error.URLError, OSError) as exc:
        if isinstance(exc, urllib.error.HTTPError):
            reason = f"HTTP {exc.code} {exc.reason}"
        else:
            reason = getattr(exc, "reason", exc)
        raise DownloadError(
            f"could not download {url}: {reason}. Check the network (or NEARKIT_DATA_URL), "
            "or download the file yourself and put it in a folder listed by "
            "`nearkit datasets`."
        ) from exc
