"""One read-only lmdb environment per database and process (lmdb >= 2 refuses a second open), checked before use.

LMDB maps ``data.mdb`` into memory and follows page numbers stored in the file; a page past the end of
a truncated file (a copy or download cut short, a full disk) is not an error but SIGBUS: the process
dies without a message, in training, in the benchmark and in ``verify_lmdb.py`` alike. Every
environment is therefore checked against its own records (the newest meta page's last page number and
the page size) before anything is read through the map, and a file too short for them, or bytes that
are no LMDB, are a :class:`DamagedLmdbError`: one line naming the database and ``verify_lmdb.py``.
"""
import os
from os import path as osp

from sfmnet_plugin.utils.safe_loading import UnsafeOrInvalidFileError

_LMDB_ENVIRONMENTS: dict = {}  # path -> the one open lmdb.Environment
_ADVICE = 'check it with datasets_prep/verify_lmdb.py and copy or build it again'


class DamagedLmdbError(UnsafeOrInvalidFileError):
    """An LMDB whose ``data.mdb`` is truncated or not an LMDB, or whose pages do not read."""


def damaged_lmdb(path, cause):
    """The :class:`DamagedLmdbError` for the LMDB at ``path`` and its ``cause`` (text or an ``lmdb.Error``)."""
    return DamagedLmdbError(f'LMDB {path}: damaged ({str(cause).strip()}); {_ADVICE}.')


def check_environment_size(env, path):
    """Raise :class:`DamagedLmdbError` if ``path``/data.mdb is shorter than the pages ``env`` says it holds."""
    data_path = osp.join(path, 'data.mdb')
    needed = (env.info()['last_pgno'] + 1) * env.stat()['psize']
    size = os.path.getsize(data_path)
    if size < needed:
        raise damaged_lmdb(path, f'data.mdb is {size:,} bytes but its own records need {needed:,}: the file was cut '
                                 'short')


def open_shared_lmdb(path, readonly=True, lock=False, readahead=False, **kwargs):
    """Open ``path`` once per process and return the same environment on every later call.

    lmdb >= 2.0 raises ``lmdb.Error: ... already open in this process`` on a second open of one
    database, also in a forked DataLoader worker whose parent opened it. Read-only environments
    opened with ``lock=False`` are safe to share, and a forked worker reuses the inherited one.
    """
    import lmdb

    key = osp.realpath(path)
    if key not in _LMDB_ENVIRONMENTS:
        if not osp.isfile(osp.join(path, 'data.mdb')):
            raise FileNotFoundError(f'LMDB database not found: {path!r} has no data.mdb.')
        try:
            env = lmdb.open(path, readonly=readonly, lock=lock, readahead=readahead, **kwargs)
        except lmdb.Error as error:  # bytes that are no LMDB, a file shorter than its two meta pages
            raise damaged_lmdb(path, error) from error
        try:
            check_environment_size(env, path)
        except DamagedLmdbError:
            env.close()
            raise
        _LMDB_ENVIRONMENTS[key] = env
    return _LMDB_ENVIRONMENTS[key]
