"""Where data files live, what they should be, and what to do when they are not there.

The data directory is, in order: the ``data_dir`` argument (``--data-dir``), the ``HADAMRNN_DATA``
environment variable, ``./data``. Files keep the publishers' names and folders, e.g.
``<data dir>/mnist/train-images-idx3-ubyte.gz``. SHA-256 sums are those of the published files;
they verify downloads and are printed when a file is missing or cannot be parsed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DataFile", "DataError", "data_dir", "require", "download", "damaged"]


class DataError(FileNotFoundError):
    """A data file is missing or unreadable; the message says which files are expected and where to get them."""


@dataclass(frozen=True)
class DataFile:
    path: str  # relative to the data directory
    sha256: str | None
    url: str | None


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The data directory: ``explicit``, else ``$HADAMRNN_DATA``, else ``./data`` (``~`` expanded)."""
    return Path(explicit or os.environ.get("HADAMRNN_DATA") or "data").expanduser()


def _describe(files: list[DataFile], root: Path) -> str:
    lines = []
    for f in files:
        where = f"from {f.url}" if f.url else "(no public download; see the data set's documentation)"
        digest = f"sha256 {f.sha256}" if f.sha256 else "no published checksum"
        state = "present" if (root / f.path).is_file() else "MISSING"
        lines.append(f"  [{state}] {root / f.path}  ({digest}) {where}")
    return "\n".join(lines)


def require(name: str, files: list[DataFile], root: Path) -> list[Path]:
    """Paths of ``files`` under ``root``; a :class:`DataError` listing every expected file if any is missing."""
    missing = [f for f in files if not (root / f.path).is_file()]
    if missing:
        raise DataError(
            f"{name}: missing {len(missing)} of {len(files)} file(s) in data directory {root.resolve()}.\n"
            f"Expected (as distributed by the publisher):\n{_describe(files, root)}\n"
            f"Point --data-dir (or HADAMRNN_DATA) at the folder holding them, or pass --download.")
    return [root / f.path for f in files]


def damaged(name: str, files: list[DataFile], root: Path, reason: str) -> DataError:
    """The error for a file that exists but cannot be parsed."""
    return DataError(f"{name}: cannot read the files in {root.resolve()} ({reason}). They may be truncated or "
                     f"corrupted; compare with the published checksums and download again:\n{_describe(files, root)}")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(name: str, files: list[DataFile], root: Path, timeout: float = 60.0) -> None:
    """Fetch every missing file from its URL, verify its SHA-256, then move it into place."""
    for f in files:
        target = root / f.path
        if target.is_file():
            continue
        if not f.url:
            raise DataError(f"{name}: {f.path} has no download URL; obtain it by hand (see the data set's documentation)")
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".part") as part:
            try:
                with urllib.request.urlopen(f.url, timeout=timeout) as response:
                    shutil.copyfileobj(response, part)
            except OSError as error:
                os.unlink(part.name)
                raise DataError(f"{name}: download of {f.url} failed ({error}). Without internet access, "
                                f"copy the file by hand to {target}.") from error
        if f.sha256 and sha256(Path(part.name)) != f.sha256:
            os.unlink(part.name)
            raise DataError(f"{name}: {f.url} did not match its published sha256 {f.sha256}; nothing was written")
        os.replace(part.name, target)
