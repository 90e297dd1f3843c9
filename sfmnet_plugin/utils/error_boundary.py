"""One error boundary per console script: a user's mistake or an OS failure is one line, only a bug a traceback.

Every ``main`` of a console script is wrapped by :func:`console_script`. What the user can fix (a missing,
unreadable, read-only, full or wrong kind of file or folder, a corrupt or code-carrying weight file, an option
file that is not UTF-8, an output the guard refuses, a folder in use by another run) is printed as
``<prog>: error: <path>: <cause>; <what to do>`` on one line and the script exits with its error status (1, or 2
for the preparation tools); nothing else is printed. Any other exception is a bug in the plugin and keeps its
traceback.
"""
import errno
import functools
import os
import sys

from sfmnet_plugin.utils.output_paths import OutputPathError
from sfmnet_plugin.utils.run_lock import RunFolderInUseError
from sfmnet_plugin.utils.safe_loading import UnsafeOrInvalidFileError

# Errors that are the user's to fix, in every tool (a tool adds its own, e.g. InferenceError).
USER_ERRORS = (OutputPathError, UnsafeOrInvalidFileError, RunFolderInUseError, OSError)

_FIXES = {
    errno.ENOENT: ('no such file or folder', 'check the path'),
    errno.EACCES: ('permission denied', 'check its permissions or choose another path'),
    errno.EPERM: ('operation not permitted', 'check its permissions or choose another path'),
    errno.EROFS: ('read-only file system', 'choose a folder on a writable disk'),
    errno.ENOSPC: ('no space left on the disk (disk full)', 'free some space or choose another disk'),
    errno.EDQUOT: ('disk quota exceeded', 'free some space or choose another disk'),
    errno.EISDIR: ('is a folder, where a file was expected', 'name a file'),
    errno.ENOTDIR: ('a part of the path is a file, where a folder was expected', 'check the path'),
    errno.ELOOP: ('too many levels of symbolic links (a link loop)', 'fix or remove the link'),
    errno.ENXIO: ('no such device (a socket or a FIFO without a writer?)', 'name a regular file'),
    errno.EIO: ('input/output error (a failing disk?)', 'check the disk'),
}


def describe_os_error(error):
    """``<path>: <cause>; <what to do>`` for an OSError (its own message when it names no errno or path)."""
    if getattr(error, 'output_path', None) is not None:  # OutputWriteError: already names the path and the cause
        return str(error)
    if error.errno and error.strerror and error.strerror != os.strerror(error.errno):
        cause, fix = error.strerror, None  # a message of the plugin's own, with its advice
    else:
        cause, fix = _FIXES.get(error.errno, (error.strerror, None)) if error.errno else (None, None)
    if not cause:
        return str(error)
    where = f'{error.filename}: ' if error.filename else ''
    if error.filename2:
        where = f'{error.filename} -> {error.filename2}: '
    return f'{where}{cause}' + (f'; {fix}.' if fix else '.')


def one_line(error):
    """The message of ``error`` on one line (an OSError: path, cause and fix)."""
    text = describe_os_error(error) if isinstance(error, OSError) else str(error)
    text = '; '.join(line.strip() for line in text.splitlines() if line.strip())
    return text or type(error).__name__


def console_script(prog, user_errors=(), status=1):
    """Decorate a console script's ``main(argv=None)``: the errors of :data:`USER_ERRORS` and ``user_errors`` become
    ``<prog>: error: ...`` (``error: ...`` with ``prog=None``) on one line and exit status ``status``; Ctrl-C is one
    line and 130."""
    caught = tuple(user_errors) + USER_ERRORS
    prefix = f'{prog}: ' if prog else ''

    def decorate(main):
        @functools.wraps(main)
        def guarded_main(argv=None):
            try:
                return main(argv)
            except KeyboardInterrupt:
                print(f'{prefix}interrupted: the unfinished output was removed; completed outputs are kept.',
                      file=sys.stderr)
                return 130
            except caught as error:
                print(f'{prefix}error: {one_line(error)}', file=sys.stderr)
                return status

        return guarded_main

    return decorate
