"""Reading a file breach was given: a regular file, within a size limit, or a one-line refusal.

``/dev/zero``, a FIFO or a folder given where a file belongs is refused before a byte is read, so no
input can make breach read until the kernel stops it. The file is opened once and checked through
its descriptor, so what is checked is what is read.
"""

from __future__ import annotations

import errno
import os
import stat

from engine.errors import BadInput
from engine.files.limits import Limits, current_limits

__all__ = ["os_error", "read_bytes", "read_text"]

_CHUNK = 1024 * 1024


def os_error(path: str | os.PathLike[str], exc: OSError, doing: str = "cannot read") -> BadInput:
    """An operating-system error on ``path`` as one line saying what to do about it."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return BadInput(
            f"no space left on the device holding {path}: free some space and run the command again"
        )
    if exc.errno == errno.EFBIG:
        return BadInput(
            f"{doing} {path}: the file would be larger than this process may write (ulimit -f) or the "
            "file system allows: free space or raise the limit and run the command again"
        )
    if exc.errno == errno.ELOOP:
        return BadInput(f"{path} is a symbolic link: breach does not follow links here; remove it")
    if exc.errno == errno.EROFS:
        return BadInput(f"{doing} {path}: the file system is read-only")
    return BadInput(f"{doing} {path}: {exc.strerror or exc}")


def read_bytes(
    path: str | os.PathLike[str], *, what: str, limit_key: str, limits: Limits | None = None
) -> bytes:
    """The bytes of the regular file ``path``, at most ``limits.<limit_key>`` of them.

    ``what`` names the file for the operator ("facts file", "playbook").

    :raises BadInput: when the file is missing, unreadable, not a regular file or over the limit.
    """
    bound = getattr(limits or current_limits(), limit_key)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO must not block the open
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise BadInput(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise os_error(path, exc, f"cannot read {what}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BadInput(f"{what} {path} is not a regular file (a folder, device or pipe): give a file")
        if info.st_size > bound:
            raise BadInput(
                f"{what} {path} is {info.st_size:,} bytes, over the limit of "
                f"{(limits or current_limits()).describe(limit_key)}"
            )
        parts: list[bytes] = []
        size = 0
        while True:
            chunk = os.read(fd, min(_CHUNK, bound + 1 - size))
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
            if size > bound:  # it grew while being read
                raise BadInput(
                    f"{what} {path} grew past the limit of {(limits or current_limits()).describe(limit_key)}"
                )
        return b"".join(parts)
    except OSError as exc:
        raise os_error(path, exc, f"cannot read {what}") from None
    finally:
        os.close(fd)


def read_text(
    path: str | os.PathLike[str],
    *,
    what: str,
    limit_key: str = "data_file_bytes",
    limits: Limits | None = None,
    encoding: str = "utf-8",
) -> str:
    """The text of ``path`` (UTF-8 by default; ``utf-8-sig`` accepts a BOM), bounded like :func:`read_bytes`.

    :raises BadInput: as :func:`read_bytes`, and naming the line of the first byte that is not UTF-8.
    """
    data = read_bytes(path, what=what, limit_key=limit_key, limits=limits)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BadInput(
            f"{what} {path}: line {line}: bytes that are not UTF-8 (save the file as UTF-8)"
        ) from None
