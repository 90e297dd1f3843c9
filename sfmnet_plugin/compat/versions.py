"""Fixes for the torchvision and lmdb releases that came after basicsr 1.4.2."""
import importlib
import sys

from sfmnet_plugin.compat.changes import replace_for_process
from sfmnet_plugin.utils.lmdb_env import damaged_lmdb, open_shared_lmdb

_FUNCTIONAL_TENSOR = 'torchvision.transforms.functional_tensor'


def alias_torchvision_functional_tensor():
    """Expose ``torchvision.transforms._functional_tensor`` under its pre-0.17 name.

    ``basicsr/data/degradations.py`` imports ``rgb_to_grayscale`` from the old module, and
    ``basicsr/__init__`` imports every dataset module, so without the alias any ``import basicsr``
    fails with ``ModuleNotFoundError``. The function keeps its signature in the renamed module.
    """
    if _FUNCTIONAL_TENSOR in sys.modules:
        return
    try:
        importlib.import_module(_FUNCTIONAL_TENSOR)
    except ImportError:
        sys.modules[_FUNCTIONAL_TENSOR] = importlib.import_module('torchvision.transforms._functional_tensor')


def patch_lmdb_shared_environments():
    """Make BasicSR's lmdb backend use :func:`open_shared_lmdb` (which checks the file before it is mapped).

    BasicSR opens one environment per dataset instance, so train and val on one LMDB, two val
    sets, or workers forked after validation opened it all fail on lmdb >= 2. A page that does not
    read (``MDB_CORRUPTED``) is a one-line ``DamagedLmdbError`` naming the database.
    """
    from basicsr.utils import file_client

    class SharedLmdbBackend(file_client.LmdbBackend):
        def __init__(self, db_paths, client_keys='default', readonly=True, lock=False, readahead=False, **kwargs):
            db_paths = [str(p) for p in db_paths] if isinstance(db_paths, (list, tuple)) else [str(db_paths)]
            client_keys = [client_keys] if isinstance(client_keys, str) else list(client_keys)
            if len(client_keys) != len(db_paths):
                raise ValueError(f'{len(client_keys)} client keys for {len(db_paths)} lmdb paths.')
            self.db_paths = db_paths
            self._client = {
                client: open_shared_lmdb(path, readonly=readonly, lock=lock, readahead=readahead, **kwargs)
                for client, path in zip(client_keys, db_paths)
            }

        def get(self, filepath, client_key):
            import lmdb

            try:
                return super().get(filepath, client_key)
            except lmdb.Error as error:
                raise damaged_lmdb(self.db_paths[list(self._client).index(client_key)], error) from error

    replace_for_process(file_client, 'LmdbBackend', SharedLmdbBackend)
    file_client.FileClient._backends['lmdb'] = file_client.LmdbBackend  # the class FileClient('lmdb', ...) builds
