"""Writing LMDBs in BasicSR's layout (the format: :mod:`sfmnet_plugin.data.lmdb_reader`).

BasicSR's own ``LmdbMaker`` is not used because it writes ``meta_info.txt`` while the data is still
incomplete (an interrupted run leaves a complete-looking LMDB), calls ``sys.exit`` when the target
exists and needs a ``map_size`` guessed up front.
"""
import errno
import os
from os import path as osp

import lmdb

from sfmnet_plugin.data.lmdb_reader import META_INFO_NAME
from sfmnet_plugin.prep.output_folders import OWNER_MARKER
from sfmnet_plugin.utils.atomic import atomic_write_bytes

_MAX_KEY_BYTES = 511  # lmdb's default maximum key size
_SPACE_MARGIN = 1 << 20  # free bytes kept beyond a batch's own: lmdb's pages, its lock file, meta_info.txt


def check_lmdb_key(key, where):
    """Raise a ValueError naming ``where`` unless ``key`` can be an LMDB key that BasicSR reads back.

    Keys are ASCII-encoded by BasicSR's reader, and its ``meta_info.txt`` parser splits at the
    first ``.`` and the first space, so those characters would silently change the key.
    """
    if not key or not key.isascii() or '.' in key or any(ch.isspace() for ch in key):
        raise ValueError(f'{where}: {key!r} cannot be an LMDB key; keys must be non-empty ASCII without dots '
                         'or white space (BasicSR takes the text before the first "." of each meta_info line).')
    if len(key.encode('ascii')) > _MAX_KEY_BYTES:
        raise ValueError(f'{where}: key {key[:40]!r}... is longer than {_MAX_KEY_BYTES} bytes.')


class LmdbWriteError(OSError):
    """Writing an LMDB failed (disk full, read-only or failing storage); names the LMDB and lmdb's cause."""

    def __init__(self, lmdb_path, cause):
        super().__init__(errno.EIO, f'cannot write the LMDB ({cause}); is the disk full or the folder read-only?',
                         lmdb_path)


class LmdbWriter:
    """Write PNG bytes into a new LMDB folder and its ``meta_info.txt``; use as a context manager.

    Images are committed in batches. lmdb needs a maximum size (``map_size``) up front; instead
    of guessing it (BasicSR's guess fails on small images), the map starts at ``map_size`` and
    doubles whenever a batch does not fit, and that batch is retried. ``meta_info.txt`` is
    written only by a successful :meth:`close`, so a folder without it is never a finished LMDB.
    """

    def __init__(self, lmdb_path, batch_size=1000, map_size=1 << 30, compress_level=1):
        if osp.exists(lmdb_path) and set(os.listdir(lmdb_path)) - {OWNER_MARKER}:
            raise FileExistsError(f'{lmdb_path!r} already exists and is not empty; refusing to write into it.')
        os.makedirs(lmdb_path, exist_ok=True)
        self.lmdb_path = lmdb_path
        self.batch_size = batch_size
        self.compress_level = compress_level
        self.require_free_space(0)
        # No fsync per commit: an interrupted write is discarded anyway; close() syncs once.
        try:
            self._env = lmdb.open(lmdb_path, map_size=map_size, sync=False, metasync=False)
        except lmdb.Error as error:
            raise LmdbWriteError(lmdb_path, error) from error
        self._pending = []
        self._meta_lines = []
        self._keys = set()

    def require_free_space(self, batch_bytes):
        """Raise a disk-full OSError naming the LMDB unless its disk has room for ``batch_bytes`` and a margin.

        lmdb works through memory maps (its lock file, and the data file it reads back): a page the full disk
        cannot hold is not an error there but SIGBUS, which kills the tool without a word or a clean-up. So the
        space is checked before lmdb is given anything to write.
        """
        disk = os.statvfs(self.lmdb_path)
        if disk.f_bavail * disk.f_frsize < 2 * batch_bytes + _SPACE_MARGIN:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.lmdb_path)

    def put(self, key, png_bytes, shape):
        """Queue one image: its key, its PNG bytes and its (h, w, c) shape."""
        check_lmdb_key(key, self.lmdb_path)
        if key in self._keys:
            raise ValueError(f'{self.lmdb_path}: key {key!r} written twice.')
        self._keys.add(key)
        self._pending.append((key.encode('ascii'), png_bytes))
        height, width, channels = shape
        self._meta_lines.append(f'{key}.png ({height},{width},{channels}) {self.compress_level}\n')
        if len(self._pending) >= self.batch_size:
            self._commit_pending()

    def _commit_pending(self):
        if self._pending:
            self.require_free_space(sum(len(key) + len(value) for key, value in self._pending))
        while self._pending:
            try:
                with self._env.begin(write=True) as txn:
                    for key, value in self._pending:
                        txn.put(key, value)
            except lmdb.MapFullError:
                self._env.set_mapsize(2 * self._env.info()['map_size'])  # the aborted batch is retried
            except lmdb.Error as error:  # e.g. mdb_txn_commit: Input/output error when the disk is full
                raise LmdbWriteError(self.lmdb_path, error) from error
            else:
                self._pending = []

    def close(self):
        """Commit what is queued, flush to disk, then write ``meta_info.txt`` (last)."""
        self._commit_pending()
        try:
            self._env.sync(True)
        except lmdb.Error as error:
            raise LmdbWriteError(self.lmdb_path, error) from error
        self._env.close()
        atomic_write_bytes(osp.join(self.lmdb_path, META_INFO_NAME), ''.join(self._meta_lines).encode('ascii'))

    def abort(self):
        """Close without ``meta_info.txt``: the folder stays visibly incomplete."""
        self._env.close()

    def __len__(self):
        return len(self._keys)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is None:
            self.close()
        else:
            self.abort()
