"""Outputs go under the root ``--help`` promises, from any directory, and ``--auto_resume`` says when it finds no
state: the root detection looked for ``setup.py`` one folder too deep, so every run wrote under the current
directory and ``--auto_resume`` from elsewhere started silently at iteration 0."""
import os

from sfmnet_plugin.compat.resume import load_resume_state  # what a launcher run's resume reads
from sfmnet_plugin.config.option_files import ROOT_PATH_VARIABLE, default_root_path

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_checkout_is_the_root_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(ROOT_PATH_VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_root_path() == REPO_ROOT


def test_auto_resume_without_a_state_says_so(tmp_path, capsys):
    states = tmp_path / 'experiments' / 'toy' / 'training_states'
    opt = {'auto_resume': True, 'num_gpu': 0, 'path': {'training_states': str(states)}}
    assert load_resume_state(opt) is None
    err = capsys.readouterr().err
    assert f'--auto_resume: no complete training state in {states}; starting from iteration 0' in err
