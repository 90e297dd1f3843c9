"""One read-only lmdb environment per database and process (lmdb >= 2 refuses a second open)."""
from os import path as osp

_LMDB_ENVIRONMENTS = {}


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
        _LMDB_ENVIRONMENTS[key] = lmdb.open(path, readonly=readonly, lock=lock, readahead=readahead, **kwargs)
    return _LMDB_ENVIRONMENTS[key]
