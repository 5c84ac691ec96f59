"""Where the traceback of an internal error goes: a file created afresh in a folder only
the user can write, so that nobody else can plant a symlink where the log is written."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time


class Refused(Exception):
    """The usual crash folder cannot be trusted; says why."""


def write(text: str) -> tuple[str, str | None]:
    """Write `text` to a new crash log; returns its path, and why the usual folder was not
    used (then the log is in a fresh private folder of its own)."""
    folder = os.path.join(tempfile.gettempdir(), f"wtrun-crashes-{os.geteuid()}")
    refused = None
    try:
        fd = _private_folder(folder)
    except Refused as e:
        refused = str(e)
        folder = tempfile.mkdtemp(prefix="wtrun-crash-")
        fd = _private_folder(folder)
    try:
        return os.path.join(folder, _write_new(fd, text)), refused
    finally:
        os.close(fd)


def _private_folder(folder: str) -> int:
    """An open descriptor of `folder`, made when missing; refused when it is a symlink, not
    a folder, someone else's, or writable by others."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder, 0o700)
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as e:
        raise Refused(f"{folder} is a symbolic link or not a folder ({e.strerror})") from e
    info = os.fstat(fd)
    if info.st_uid != os.geteuid() or info.st_mode & 0o022:
        os.close(fd)
        whose = (
            f"owned by uid {info.st_uid}" if info.st_uid != os.geteuid() else "writable by others"
        )
        raise Refused(f"{folder} is {whose}")
    os.fchmod(fd, 0o700)
    return fd


def _write_new(folder_fd: int, text: str) -> str:
    stem = f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    for n in range(100):
        name = f"{stem}.log" if n == 0 else f"{stem}-{n}.log"
        try:
            fd = os.open(name, flags, 0o600, dir_fd=folder_fd)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        return name
    raise FileExistsError(f"crash logs named {stem}-*.log all exist")
