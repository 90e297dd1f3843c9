"""``path.*`` options create no folder outside the run's own: BasicSR's ``make_exp_dirs`` made a folder for every
``path`` value it did not know, so ``path.network_format: safetensors`` left a ``safetensors/`` folder in the
current directory. A launcher run replaces it (run scope, :func:`sfmnet_plugin.launch.session.run_changes`)."""
import os

import basicsr.train
import basicsr.utils.misc as misc

from sfmnet_plugin.compat.changes import RunChanges
from sfmnet_plugin.compat.run_state import Run
from sfmnet_plugin.launch.folders import RunFolders
from sfmnet_plugin.launch.session import run_changes


def test_only_the_runs_own_folders_are_created(tmp_path, monkeypatch):
    (tmp_path / 'cwd').mkdir()
    monkeypatch.chdir(tmp_path / 'cwd')
    run = tmp_path / 'root' / 'experiments' / 'toy'
    opt = {'is_train': True, 'path': {
        'experiments_root': str(run), 'models': str(run / 'models'), 'training_states': str(run / 'training_states'),
        'log': str(run), 'visualization': str(run / 'visualization'), 'network_format': 'safetensors',
        'ignore_resume_networks': 'network_d', 'mistyped_key': 'somewhere', 'pretrain_network_g': None}}
    basicsr_own = basicsr.train.make_exp_dirs
    assert basicsr_own is misc.make_exp_dirs  # outside a launcher run: BasicSR's own
    folders, changes = RunFolders(), RunChanges()
    try:
        for owner, name, value in run_changes('train', Run(None), folders):
            changes.replace(owner, name, value)
        basicsr.train.make_exp_dirs(opt)  # the one BasicSR's training pipeline calls
    finally:
        changes.restore()
        folders.release()
    assert basicsr.train.make_exp_dirs is basicsr_own
    assert os.listdir(tmp_path / 'cwd') == []
    assert sorted(os.listdir(run)) == ['models', 'training_states', 'visualization']
