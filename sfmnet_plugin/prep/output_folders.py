"""Output folders that appear whole or not at all, and are only ever deleted by the tool that made them.

A preparation output (a split folder, an LMDB) is built under ``<final>.partial`` and swapped
into place at the end. The swap is one ``renameat2(RENAME_EXCHANGE)`` on Linux, so a kill at any
moment leaves ``<final>`` holding either the old complete output or the new complete one; where
the exchange is not available, the old output is first renamed ``<final>.old`` and the next run
(:func:`recover_interrupted_swap`) puts it back if the new one never arrived.

A folder being built (or swapped out) carries an :data:`OWNER_MARKER` file; a finished output is
recognised by its contents (only an LMDB's files, or only the entries an output of its kind
holds: see :func:`looks_like_ours`). Nothing else is ever deleted, so a wrong ``--out`` or split
name can never remove a user's folder.
"""
import ctypes
import os
import shutil
from contextlib import contextmanager
from os import path as osp

PARTIAL_SUFFIX = '.partial'
OLD_SUFFIX = '.old'
OWNER_MARKER = '.sfmnet_output'  # an empty file: "made by an sfmnet-plugin preparation tool"
# an LMDB's files, and the landmark files --landmarks 68 writes beside them (sfmnet_plugin.prep.landmarks)
_LMDB_FILES = {'data.mdb', 'lock.mdb', 'meta_info.txt', 'landmarks_68.txt', 'landmarks_68_missing.txt'}
_RENAME_EXCHANGE = 2  # linux/fs.h


class NotOurOutputError(Exception):
    """A path the tools were asked to replace or remove, but did not create."""


def mark_as_ours(folder):
    with open(osp.join(folder, OWNER_MARKER), 'w', encoding='ascii'):
        pass


def looks_like_ours(folder, is_own_output=None):
    """True if ``folder`` carries the marker, holds only an LMDB's files, or ``is_own_output(set of entries)``."""
    if not osp.isdir(folder) or osp.islink(folder):
        return False
    entries = set(os.listdir(folder))
    if OWNER_MARKER in entries:
        return True
    return bool(entries) and (entries <= _LMDB_FILES or bool(is_own_output and is_own_output(entries)))


def remove_our_folder(folder, is_own_output=None):
    """Delete ``folder`` if it is ours (see :func:`looks_like_ours`); otherwise raise :class:`NotOurOutputError`."""
    if not looks_like_ours(folder, is_own_output):
        raise NotOurOutputError(f'{folder} exists but was not created by this tool; refusing to delete it. '
                                'Move it away or choose another output.')
    shutil.rmtree(folder)


def _exchange(source, target):
    """Atomically swap two existing paths (Linux renameat2); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    result = renameat2(at_fdcwd, os.fsencode(source), at_fdcwd, os.fsencode(target), _RENAME_EXCHANGE)
    return result == 0


def recover_interrupted_swap(final_path, is_own_output=None):
    """Finish or undo a swap that a kill interrupted (only where the exchange was unavailable)."""
    old = final_path + OLD_SUFFIX
    if not osp.exists(old):
        return
    if osp.exists(final_path):  # the new output arrived: the old one is garbage
        remove_our_folder(old, is_own_output)
    elif looks_like_ours(old, is_own_output):  # killed between the two renames: put the old output back
        os.rename(old, final_path)
        print(f'Restored {final_path} from {old} (a rebuild was interrupted).')


@contextmanager
def build_atomically(final_path, is_own_output=None):
    """Yield ``<final_path>.partial`` (marked as ours) to build into; on success swap it into ``final_path``.

    ``is_own_output`` tells a finished output of this kind by its entries (LMDBs are recognised
    without it). A leftover ``.partial`` of an interrupted run is removed first
    (only if it is ours). On an exception the partial folder is removed; the old output is untouched.
    """
    recover_interrupted_swap(final_path, is_own_output)
    if osp.exists(final_path) and not looks_like_ours(final_path, is_own_output):
        raise NotOurOutputError(f'{final_path} exists but was not created by this tool; refusing to replace it. '
                                'Move it away or choose another output.')
    partial = final_path + PARTIAL_SUFFIX
    if osp.lexists(partial):
        print(f'Removing {partial}, left over from an interrupted run.')
        remove_our_folder(partial, is_own_output)
    os.makedirs(partial)
    mark_as_ours(partial)
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    _swap_into_place(partial, final_path, is_own_output)


def _swap_into_place(partial, final_path, is_own_output):
    os.remove(osp.join(partial, OWNER_MARKER))  # finished: recognised by its contents from now on
    if not osp.exists(final_path):
        os.rename(partial, final_path)
        return
    mark_as_ours(final_path)  # the old output is about to become garbage that the next run may delete
    if _exchange(partial, final_path):
        shutil.rmtree(partial)  # now the old output; a kill here leaves a marked leftover for the next run
        return
    old = final_path + OLD_SUFFIX
    os.rename(final_path, old)
    os.rename(partial, final_path)
    shutil.rmtree(old)
