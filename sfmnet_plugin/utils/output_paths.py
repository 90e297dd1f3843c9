"""Checks a writer makes before it writes: never onto one of its own inputs, never through a symbolic link.

A tool that writes ``<folder>/<name>`` with ``open``/OpenCV follows a symlink of that name and overwrites
the file it points to, anywhere on the disk; a tool told to write its output over its input (the
checkpoint it exports, the option file it reads) destroys the input even with an atomic rename. The
tools call these functions with their planned output paths first; each problem is one
:class:`OutputPathError` line naming the option, the path and what to do instead. (Atomic writes that
rename a temporary file onto the name replace a link itself and never write through it; they still
call :func:`refuse_inputs`.)
"""
import errno
import os
import re
import shutil
from os import path as osp


class OutputPathError(ValueError):
    """An output path that would destroy an input or write through a symbolic link."""


# A name that becomes one folder or file name, never a path: no separator, no leading '.' (so never '..').
_PLAIN_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]*$')


def is_plain_name(value):
    """True for a name (a string, or an integer) of letters, digits, '.', '_' and '-' that starts with a letter or
    digit: safe to join under an output root."""
    return isinstance(value, (str, int)) and not isinstance(value, bool) and bool(_PLAIN_NAME.match(str(value)))


def _same_file(first, second):
    if osp.exists(first) and osp.exists(second):
        return osp.samefile(first, second)
    return osp.realpath(first) == osp.realpath(second)


def refuse_inputs(output, inputs, option='--output'):
    """Raise :class:`OutputPathError` if ``output`` is one of ``inputs`` (``{label: path or None}``), spelt any way."""
    for label, path in inputs.items():
        if path and _same_file(output, path):
            raise OutputPathError(f'{option} {output} is the {label} {path}: writing it would destroy the input; '
                                  f'choose another {option}.')


def refuse_links(paths, option='--output'):
    """Raise :class:`OutputPathError` if any of ``paths`` (outputs about to be written) is a symbolic link."""
    for path in paths:
        if osp.islink(path):
            raise OutputPathError(f'{option}: {path} is a symbolic link (to {os.readlink(path)}); writing it would '
                                  'overwrite the file the link points to: remove the link or choose another folder.')


class OutputWriteError(OSError):
    """An output that could not be written (read-only, disk full, no permission); the message names path and cause."""

    def __init__(self, message, path=None, errno_value=None):
        super().__init__(message)
        self.output_path = path
        if errno_value is not None:
            self.errno = errno_value


_CAUSES = {
    errno.ENOSPC: 'no space left on the disk (disk full)',
    errno.EDQUOT: 'disk quota exceeded',
    errno.EROFS: 'read-only file system',
    errno.EACCES: 'permission denied (is the folder read-only for this user?)',
    errno.EPERM: 'operation not permitted (is the folder read-only for this user?)',
}


def output_write_error(path, error):
    """The :class:`OutputWriteError` for ``error`` (an OSError, or torch's RuntimeError "file write failed")
    raised while writing ``path``: one line with the path and the cause in words (``error`` itself when it is
    one already)."""
    if isinstance(error, OutputWriteError):
        return error
    if isinstance(error, OSError) and error.errno in _CAUSES:
        cause = _CAUSES[error.errno]
    elif isinstance(error, OSError):
        cause = error.strerror or str(error)
    else:  # torch's writer reports a failed write without errno: say whether the disk is full
        text = re.sub(r'^\[enforce fail at [^\]]*\]\s*\.?\s*', '', str(error).strip())
        cause = text.splitlines()[0].rstrip('.') if text else type(error).__name__
        try:
            if shutil.disk_usage(osp.dirname(osp.abspath(path))).free < 1 << 20:
                cause = f'{_CAUSES[errno.ENOSPC]}; {cause}'
        except OSError:
            pass
    return OutputWriteError(f'cannot write {path}: {cause}.', path, getattr(error, 'errno', None))

