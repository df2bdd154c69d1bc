"""Writing files that hold personal data: 0600 in 0700 folders, whatever the umask, never through a link.

A folder is opened once, component by component from a trusted root, each step refusing a symbolic
link (``O_NOFOLLOW``) and creating what is missing with mode 0700; every later write is relative to
that open folder, so swapping a path component for a link afterwards changes nothing. A file is
written unnamed (Linux) or under an unpredictable temporary name, created exclusively (``O_EXCL``)
without following a link, and named only when whole: readers see the old file or the new one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from engine.errors import BadInput
from engine.files.reading import os_error

__all__ = [
    "PrivateFolder",
    "PrivateTemporary",
    "append_private",
    "clean_temporaries",
    "make_private_dirs",
    "refuse_link",
    "write_private",
]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# A file without a name until it is linked into the folder (Linux); 0 where the system has none.
_UNNAMED_FILE = os.O_WRONLY | os.O_CLOEXEC | os.O_TMPFILE if hasattr(os, "O_TMPFILE") else 0
_NO_UNNAMED = (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL)
# Temporary names: the writer's pid (so a later run knows whether it is gone) and 64 random bits (so
# no one can plant a file or link at the name in advance). The older ".<name>.<pid>.<n>.tmp" is
# matched too, to clean up after earlier releases.
_TEMP = re.compile(r"^\..+\.(\d+)\.(?:[0-9a-f]{16}|\d+)\.tmp$")


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def _link_refused(path: Path) -> BadInput:
    return BadInput(
        f"{path} is a symbolic link: breach never writes through links; remove it (rm {path}) and run again"
    )


def _write_all(fd: int, content: bytes) -> None:
    view = memoryview(content)
    while view:  # os.write may write less than asked
        view = view[os.write(fd, view) :]


def _temp_name(filename: str) -> str:
    return f".{filename}.{os.getpid()}.{secrets.token_hex(8)}.tmp"


def _check_name(filename: str) -> None:
    if not filename or filename in (".", "..") or "/" in filename or "\\" in filename or "\x00" in filename:
        raise BadInput(f"refused file name {filename!r}: use safe_filename()")


class PrivateFolder:
    """A folder opened without following links; files written in it are private to the owner."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path
        self.unnamed = _UNNAMED_FILE != 0  # whether put() may try an unnamed file first

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None
    ) -> PrivateFolder:
        """Open (creating 0700 what is missing) the folder ``path``.

        Every component below ``root`` is refused when it is a symbolic link; ``root`` itself is the
        operator's choice and opened as the system resolves it. Without ``root``, or when ``path`` is
        not inside it, ``root`` is the folder holding ``path``.

        :raises BadInput: naming a component that is a link or not a folder, or the system's error.
        """
        target = Path(os.path.abspath(path))
        base = Path(os.path.abspath(root)) if root is not None else None
        if base is None or (target != base and base not in target.parents):
            base = target.parent
        while not os.path.lexists(base) and base != base.parent:
            base = base.parent  # folders missing above the root are created like the rest: 0700
        try:
            fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise os_error(base, exc, "cannot open folder") from None
        current = base
        for part in target.relative_to(base).parts:
            current = current / part
            fd = _step(fd, part, current)  # closes the parent whatever happens
        return cls(fd, target)

    def close(self) -> None:
        """Release the folder."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> PrivateFolder:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def write(self, filename: str, content: bytes) -> Path:
        """Write ``content`` to ``filename`` in this folder atomically, mode 0600; return its path.

        :raises BadInput: when the name is unsafe or a link, or the write fails (a full disk says so).
        """
        self.put(filename, content)
        return self.path / filename

    def put(self, filename: str, content: bytes) -> None:
        """:meth:`write` without building the path: for a run writing thousands of files.

        Where the system allows it (Linux), the file is first unnamed (``O_TMPFILE``), filled, then
        given ``filename`` by a hard link, which fails rather than replace or follow anything there:
        a reader sees no file or the whole file, and a killed run leaves nothing behind. When
        ``filename`` exists (a file to replace, a link to refuse) or the system cannot, the steps of
        :meth:`temporary` then ``commit()`` are taken.
        """
        _check_name(filename)
        if self.unnamed and self._put_unnamed(filename, content):
            return
        with self.temporary(filename) as temp:
            _write_all(temp.fd, content)
            temp.commit()

    def _put_unnamed(self, filename: str, content: bytes) -> bool:
        """Write ``filename`` through an unnamed file; False when it exists or the system cannot."""
        try:
            fd = os.open(".", _UNNAMED_FILE, 0o600, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno in _NO_UNNAMED:  # this file system has no unnamed files: never ask again
                self.unnamed = False
                return False
            raise os_error(self.path / filename, exc, "cannot write") from None
        try:
            os.fchmod(fd, 0o600)  # the umask may have removed bits: exactly rw for the owner
            _write_all(fd, content)
            # Through /proc: linking a descriptor directly needs a privilege breach does not have.
            os.link(f"/proc/self/fd/{fd}", filename, dst_dir_fd=self.fd, follow_symlinks=True)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.EPERM, errno.EXDEV, *_NO_UNNAMED):  # no /proc, say
                raise os_error(self.path / filename, exc, "cannot write") from None
            self.unnamed = False
            return False
        finally:
            os.close(fd)
        return True

    @contextlib.contextmanager
    def temporary(self, filename: str) -> Iterator[PrivateTemporary]:
        """A new private file to fill, renamed to ``filename`` by ``commit()``; removed if never committed."""
        _check_name(filename)
        temp_name = _temp_name(filename)
        try:
            fd = os.open(temp_name, _NEW_FILE, 0o600, dir_fd=self.fd)
        except OSError as exc:
            raise os_error(self.path / filename, exc, "cannot write") from None
        temporary = PrivateTemporary(self, fd, temp_name, filename)
        try:
            os.fchmod(fd, 0o600)  # the umask may have removed bits: exactly rw for the owner
            yield temporary
        except OSError as exc:
            raise os_error(self.path / filename, exc, "cannot write") from None
        finally:
            temporary.discard()

    def exists(self, filename: str) -> bool:
        """Whether ``filename`` exists here (a link counts, and is not followed)."""
        try:
            os.lstat(filename, dir_fd=self.fd)
        except FileNotFoundError:
            return False
        return True

    def clean_temporaries(self) -> int:
        """Remove temporary files a killed run left here (their process is gone); return how many."""
        removed = 0
        for entry in os.scandir(self.fd):
            found = _TEMP.match(entry.name)
            if found is None or _alive(int(found.group(1))) or not entry.is_file(follow_symlinks=False):
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.name, dir_fd=self.fd)
                removed += 1
        return removed


class PrivateTemporary:
    """A temporary private file being written; ``commit()`` puts it at its final name."""

    def __init__(self, folder: PrivateFolder, fd: int, name: str, final: str) -> None:
        self.folder = folder
        self.fd = fd
        self.name = name
        self.final = final
        self.committed = False

    def file(self) -> BinaryIO:
        """A binary file object on the temporary file (closing it leaves the descriptor open)."""
        return os.fdopen(os.dup(self.fd), "wb")

    @property
    def path(self) -> Path:
        """Where the file will be once committed."""
        return self.folder.path / self.final

    def commit(self, *, replace: bool = True) -> Path:
        """Rename the finished file to its final name (``replace=False``: refuse an existing one).

        :raises BadInput: when the final name is a link or (without ``replace``) exists.
        """
        folder = self.folder
        if _is_link(self.final, folder.fd):
            raise _link_refused(self.path)
        if not replace and folder.exists(self.final):
            raise BadInput(f"{self.path} exists already: name another file")
        os.close(self.fd)
        self.fd = -1
        try:
            os.replace(self.name, self.final, src_dir_fd=folder.fd, dst_dir_fd=folder.fd)
        except OSError as exc:
            raise os_error(self.path, exc, "cannot write") from None
        self.committed = True
        return self.path

    def discard(self) -> None:
        """Close and remove the temporary file unless it was committed."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if not self.committed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.name, dir_fd=self.folder.fd)


def _step(parent_fd: int, name: str, path: Path) -> int:
    """Open the folder ``name`` below ``parent_fd`` without following a link, creating it 0700."""
    try:
        for _attempt in range(3):
            try:
                fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
                return fd
            except FileNotFoundError:
                try:
                    os.mkdir(name, 0o700, dir_fd=parent_fd)
                except FileExistsError:
                    continue  # made meanwhile by another run: open it
                except OSError as exc:  # no permission, a read-only or full file system, /proc
                    raise os_error(path, exc, "cannot create folder") from None
                fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
                os.fchmod(fd, 0o700)  # mkdir's mode passes through the umask
                return fd
            except OSError as exc:
                if _is_link(name, parent_fd):
                    raise _link_refused(path) from None
                if isinstance(exc, NotADirectoryError):
                    raise BadInput(f"{path} is not a folder: move it away and run again") from None
                raise os_error(path, exc, "cannot open folder") from None
        raise BadInput(f"cannot open folder {path}: it keeps changing")
    finally:
        os.close(parent_fd)


def write_private(
    directory: str | os.PathLike[str],
    filename: str,
    content: bytes,
    *,
    root: str | os.PathLike[str] | None = None,
) -> Path:
    """Write ``content`` to ``directory/filename`` atomically, 0600, folders 0700, no link followed
    below ``root`` (see :meth:`PrivateFolder.open`); return the path written."""
    _check_name(filename)
    with PrivateFolder.open(directory, root=root) as folder:
        return folder.write(filename, content)


def make_private_dirs(
    path: str | os.PathLike[str], *names: str, root: str | os.PathLike[str] | None = None
) -> Path:
    """Create ``path`` and its sub-folders ``names`` (0700 each, no link followed); return ``path``."""
    with PrivateFolder.open(path, root=root) as folder:
        for name in names:
            _check_name(name)
            os.close(_step(os.dup(folder.fd), name, folder.path / name))
        return folder.path


def append_private(
    path: str | os.PathLike[str], line: str, *, root: str | os.PathLike[str] | None = None
) -> None:
    """Append ``line`` to the log file ``path``: created 0600, never through a link, kept 0600.

    Folders missing on the way are created 0700; none below ``root`` (default: the log's own
    folder) may be a link.

    :raises BadInput: when ``path`` or a folder below ``root`` is a link, ``path`` is not a regular
        file, or the write fails.
    """
    target = Path(os.path.abspath(path))
    with PrivateFolder.open(target.parent, root=root if root is not None else target.parent) as folder:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        try:
            fd = os.open(target.name, flags, 0o600, dir_fd=folder.fd)
        except OSError as exc:
            if _is_link(target.name, folder.fd):
                raise _link_refused(target) from None
            raise os_error(target, exc, "cannot write") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise BadInput(f"{target} is not a regular file: give a file for the log")
            if info.st_mode & 0o077:
                os.fchmod(fd, 0o600)
            os.write(fd, line.encode("utf-8", "backslashreplace"))
        except OSError as exc:
            raise os_error(target, exc, "cannot write") from None
        finally:
            os.close(fd)


def refuse_link(path: str | os.PathLike[str], *, root: str | os.PathLike[str] | None = None) -> None:
    """Refuse ``path`` when it, or a folder between ``root`` and it, is a symbolic link.

    Checked before work starts, so a planted link stops the command (exit 2) instead of failing
    half-way; the writes themselves refuse links again, so nothing relies on this check alone.

    :raises BadInput: naming the link and how to remove it.
    """
    target = Path(os.path.abspath(path))
    base = Path(os.path.abspath(root)) if root is not None else target.parent
    if target != base and base not in target.parents:
        base = target.parent
    current = base
    for part in target.relative_to(base).parts:
        current = current / part
        if current.is_symlink():
            raise _link_refused(current)


def clean_temporaries(folder: str | os.PathLike[str]) -> int:
    """Remove the temporary files a killed run left in ``folder`` (its process is gone); return how many."""
    try:
        fd = os.open(folder, _DIR_FLAGS)
    except OSError:
        return 0  # no folder (or a link, refused when written to): nothing of ours is there
    with PrivateFolder(fd, Path(folder)) as opened:
        return opened.clean_temporaries()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
