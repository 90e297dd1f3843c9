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


def test_a_root_that_is_not_utf8_is_one_line_before_anything_runs(tmp_path, monkeypatch, capsys):
    """Its name could not be written into the training log (logging tracebacks on every line) nor the option copy."""
    import pytest

    from sfmnet_cli import demo
    from sfmnet_plugin.launch.cli import main as launch

    monkeypatch.setenv(ROOT_PATH_VARIABLE, os.fsdecode(os.fsencode(str(tmp_path)) + b'/r\xff\xfe'))
    (tmp_path / 'run.yml').write_text('name: r\n')
    with pytest.raises(SystemExit) as exit_info:
        launch('train', argv=['-opt', str(tmp_path / 'run.yml')])
    assert exit_info.value.code == 2
    assert demo.main([]) == 1
    for line in capsys.readouterr().err.strip().splitlines():
        assert "r\\xff\\xfe': not valid UTF-8; choose a folder whose name is." in line, line
    assert os.listdir(tmp_path) == ['run.yml']
