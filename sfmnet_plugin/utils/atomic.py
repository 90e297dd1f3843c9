"""Atomic file outputs: write beside the target, then rename, so a kill leaves the old or the new file.

The one implementation of "write to ``<path>.partial``, then rename" that every file output of the
plugin uses (checkpoints, training states, reports, benchmark tables, ONNX exports, restored photos,
downloaded demo photos). The temporary file is in the target's folder because a rename is atomic
only within one file system. Whole output folders (the prepared LMDB splits) are swapped by
:func:`sfmnet_plugin.prep.output_folders.build_atomically`, a different mechanism for folders.
"""
import errno
import os
import threading
from os import path as osp

from sfmnet_plugin.utils.output_paths import OutputWriteError, output_write_error

PARTIAL_SUFFIX = '.partial'
_UMASK_LOCK = threading.Lock()


def file_mode(executable=False):
    """The permissions of a new file: 0666 (0777 for a script) less the process's umask (what ``open`` gives; some
    writers, e.g. ONNX's or safetensors', create files 0600 or 0644 whatever the umask)."""
    with _UMASK_LOCK:  # the umask can only be read by setting it
        umask = os.umask(0o022)
        os.umask(umask)
    return (0o777 if executable else 0o666) & ~umask


def atomic_write(path, write, fsync=False, make_folder=False, executable=False):
    """Call ``write(temporary_path)``, then rename the temporary file to ``path``; returns ``path``.

    ``write`` receives ``<path>.partial`` (a name any writer accepts: ``torch.save``, ``PIL.Image.save`` with a
    ``format``, ``figure.savefig``...) and must create that file. A missing parent folder is an error unless
    ``make_folder`` (a mistyped output folder should not appear silently). On any exception, also Ctrl-C, the
    temporary file is removed and ``path`` keeps its previous content (or stays absent).
    ``fsync=True`` also flushes the file to the disk before the rename, for outputs that must survive a power loss,
    not only a killed process. A symbolic link at the temporary name is removed (the link, not what it points to),
    and the rename replaces a link at ``path`` itself: the write never goes through a link to a file elsewhere.
    Every file gets the same permissions (:func:`file_mode`), whatever library wrote it. An OSError (read-only,
    full disk, no permission) is an :class:`~sfmnet_plugin.utils.output_paths.OutputWriteError` naming ``path``
    and the cause in words.
    """
    folder = osp.dirname(osp.abspath(path))
    if make_folder:
        os.makedirs(folder, exist_ok=True)
    elif not osp.isdir(folder):  # said here, not by the writer: torch's and safetensors' words are their own
        what = 'is a file, not a folder' if osp.exists(folder) else 'does not exist'
        raise OutputWriteError(f'cannot write {path}: {folder} {what}; create the folder or choose another output '
                               'path.', path, errno.ENOENT)
    partial = f'{path}{PARTIAL_SUFFIX}'
    if osp.islink(partial):  # a link under the temporary name: never write through it to a file elsewhere
        os.remove(partial)
    try:
        write(partial)
        os.chmod(partial, file_mode(executable))
        if fsync:
            with open(partial, 'rb') as f:
                os.fsync(f.fileno())
        os.replace(partial, path)
    except BaseException as error:  # a full disk, a folder at ``path``, Ctrl-C: leave nothing half-written behind
        if osp.isfile(partial):
            os.remove(partial)
        if isinstance(error, OSError) and not hasattr(error, 'output_path'):
            raise output_write_error(path, error) from error
        raise
    return path


def atomic_write_bytes(path, data, make_folder=False, executable=False):
    """Write ``data`` (bytes, or a bytes-like array such as ``cv2.imencode``'s) to ``path`` atomically."""

    def write(target):
        with open(target, 'wb') as f:
            f.write(data)

    return atomic_write(path, write, make_folder=make_folder, executable=executable)


def atomic_torch_save(obj, path):
    """``torch.save`` to a temporary name beside ``path``, then rename: a kill never leaves a truncated file."""
    import torch

    return atomic_write(path, lambda target: torch.save(obj, target))
