"""Where data files live, what they should be, and what to do when they are not there.

The data directory is, in order: the ``data_dir`` argument (``--data-dir``), the ``HADAMRNN_DATA``
environment variable, ``./data``. Files keep the publishers' names and folders, e.g.
``<data dir>/mnist/train-images-idx3-ubyte.gz``. SHA-256 sums are those of the published files;
they verify every file on first use (and downloads), and are printed when a file is missing or
cannot be parsed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..untrusted import parse_json

__all__ = ["DataFile", "DataError", "data_dir", "require", "download", "damaged", "verify", "UNVERIFIED"]


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
    """Paths of ``files`` under ``root``, each verified against its published SHA-256 (see :func:`verify`);
    a :class:`DataError` listing every expected file if any is missing."""
    missing = [f for f in files if not (root / f.path).is_file()]
    if missing:
        raise DataError(
            f"{name}: missing {len(missing)} of {len(files)} file(s) in data directory {root.resolve()}.\n"
            f"Expected (as distributed by the publisher):\n{_describe(files, root)}\n"
            f"Point --data-dir (or HADAMRNN_DATA) at the folder holding them, or pass --download.")
    for f in files:
        verify(name, f, root)
    return [root / f.path for f in files]


UNVERIFIED = "HADAMRNN_UNVERIFIED_DATA"  # set to 1 to use files that differ from the published ones


def _verified_record() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hadamrnn" / "verified.json"


def verify(name: str, f: DataFile, root: Path) -> None:
    """Check a file against its published SHA-256 on first use; a verified file is remembered by its
    path, size, modification time, inode and status-change time, so later loads do not hash it again.
    ``touch -r`` can set the modification time back after an edit, but not the status-change time
    (the kernel sets it on every write, chmod or rename), so an altered file is hashed again. A mismatch is a
    :class:`DataError`; ``HADAMRNN_UNVERIFIED_DATA=1`` accepts local variants knowingly."""
    path = (root / f.path).resolve()
    if f.sha256 is None or os.environ.get(UNVERIFIED) == "1":
        return
    stat = path.stat()
    stamp = [stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns]
    record_path = _verified_record()
    try:
        record = parse_json(record_path.read_bytes(), str(record_path))
        if not isinstance(record, dict):
            record = {}
    except (OSError, ValueError):
        record = {}  # unreadable: verify again (and rewrite the record)
    if record.get(str(path)) == stamp + [f.sha256]:
        return
    found = sha256(path)
    if found != f.sha256:
        raise DataError(f"{name}: {path} does not match its published SHA-256 (expected {f.sha256}, found {found}): "
                        f"it is altered, truncated or another release. Download it again"
                        f"{' from ' + f.url if f.url else ''}, or set {UNVERIFIED}=1 to use your local variant knowingly.")
    record[str(path)] = stamp + [f.sha256]
    try:
        from ..atomic import atomic_write_bytes

        atomic_write_bytes(record_path, json.dumps(record, indent=0).encode())
    except OSError:
        pass  # a read-only home: verify again next time


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
