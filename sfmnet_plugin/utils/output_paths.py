"""What output paths may be, and how a failed write is told: plain names, :class:`OutputPathError` and
:class:`OutputWriteError`.

The checks themselves (never onto an input, never through a symbolic link, never two outputs with one name) are
:class:`sfmnet_plugin.utils.output_guard.OutputPlan`'s, which every tool's outputs go through; each problem is one
:class:`OutputPathError` line naming the option, the path and what to do instead.
"""
import errno
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

