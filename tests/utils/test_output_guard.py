"""The output guard's rules on their own (every tool's use of them: tests/tools/test_output_guard_matrix.py)."""
import os

import pytest

from sfmnet_plugin.utils.atomic import atomic_write, atomic_write_bytes, file_mode
from sfmnet_plugin.utils.output_guard import OutputPlan, make_our_folder, remove_our_folder
from sfmnet_plugin.utils.output_paths import OutputPathError


def test_a_link_among_the_folders_below_the_output_folder_is_refused(tmp_path):
    (tmp_path / 'elsewhere').mkdir()
    (tmp_path / 'out').mkdir()
    os.symlink(tmp_path / 'elsewhere', tmp_path / 'out' / 'models')
    plan = OutputPlan(str(tmp_path / 'out'))
    plan.add(str(tmp_path / 'out' / 'models' / 'net.pth'))
    with pytest.raises(OutputPathError, match='models is a symbolic link'):
        plan.check()


def test_an_output_spelt_differently_is_still_the_input(tmp_path):
    (tmp_path / 'a.png').write_bytes(b'photo')
    plan = OutputPlan(str(tmp_path / 'out'), {'input': str(tmp_path / 'a.png')})
    plan.add(str(tmp_path / 'out' / '..' / 'a.png'))
    with pytest.raises(OutputPathError, match='writing it would destroy the input'):
        plan.check()


def test_a_failed_run_removes_only_the_empty_folders_it_created(tmp_path):
    with pytest.raises(RuntimeError):
        with OutputPlan(str(tmp_path / 'a' / 'b')) as plan:
            assert plan.make_folder() == str(tmp_path / 'a' / 'b')
            raise RuntimeError('the network could not be loaded')
    assert os.listdir(tmp_path) == []
    with pytest.raises(RuntimeError):
        with OutputPlan(str(tmp_path / 'a')) as plan:
            plan.make_folder()
            (tmp_path / 'a' / 'written.png').write_bytes(b'kept')
            raise RuntimeError('later')
    assert os.listdir(tmp_path / 'a') == ['written.png']


def test_only_a_folder_this_tool_made_is_removed(tmp_path):
    (tmp_path / 'mine').mkdir()
    with pytest.raises(OutputPathError, match='was not created by this tool'):
        remove_our_folder(str(tmp_path / 'mine'))
    make_our_folder(str(tmp_path / 'ours'))
    remove_our_folder(str(tmp_path / 'ours'))
    assert os.listdir(tmp_path) == ['mine']


def test_every_format_gets_the_same_permissions(tmp_path):
    def write_0600(target):  # what ONNX's and some other writers do
        fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)

    atomic_write(str(tmp_path / 'model.onnx'), write_0600)
    atomic_write_bytes(str(tmp_path / 'table.csv'), b'x')
    atomic_write_bytes(str(tmp_path / 'run.sh'), b'x', executable=True)
    assert os.stat(tmp_path / 'model.onnx').st_mode & 0o777 == file_mode()
    assert os.stat(tmp_path / 'table.csv').st_mode & 0o777 == file_mode()
    assert os.stat(tmp_path / 'run.sh').st_mode & 0o777 == file_mode(executable=True)
