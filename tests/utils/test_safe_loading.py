"""No code runs from data files: crafted pickles and YAML tags through every loading path.

Each malicious file would create a marker file if it were executed; the marker must never appear and the
error must be one line that names the file.
"""
import glob
import os
import pickle
import re
import subprocess
import sys
from os import path as osp

import pytest
import torch
import yaml

from sfmnet_plugin.compat import hardening
from sfmnet_plugin.compat.resume import load_resume_state
from sfmnet_plugin.config.option_files import OptionFileError, load_merged_options
from sfmnet_plugin.utils.safe_loading import UnsafeOrInvalidFileError, load_torch_file, load_yaml_file


def malicious_yaml(path, marker, extra=''):
    path.write_text(f'{extra}name: evil\nmodel_type: SRModel\n'
                    f'payload: !!python/object/apply:builtins.open ["{marker}", "w"]\n')
    return str(path)


def good_state(path, iteration):
    torch.save({'epoch': 0, 'iter': iteration, 'optimizers': [], 'schedulers': []}, path)


def resume_opt(states_dir, auto_resume=True, resume_state=None):
    return {'auto_resume': auto_resume, 'num_gpu': 0,
            'path': {'training_states': str(states_dir), 'resume_state': resume_state}}


# ------------------------------------------------------------------ torch files


def test_auto_resume_never_unpickles_code(tmp_path, capsys, malicious_torch_file):
    marker = tmp_path / 'MARKER'
    good_state(tmp_path / '2.state', 2)
    malicious_torch_file(tmp_path / '4.state', marker)
    state = load_resume_state(resume_opt(tmp_path))
    assert not marker.exists()
    assert state['iter'] == 2  # fell back to the newest state that is plain data
    warning = capsys.readouterr().err
    assert '4.state' in warning and 'weights_only' in warning


def test_explicit_resume_state_refuses_a_pickle_with_code(tmp_path, malicious_torch_file):
    marker = tmp_path / 'MARKER'
    state_path = malicious_torch_file(tmp_path / '4.state', marker)
    with pytest.raises(UnsafeOrInvalidFileError, match=re.escape(state_path)):
        load_resume_state(resume_opt(tmp_path, auto_resume=False, resume_state=state_path))
    assert not marker.exists()


@pytest.mark.parametrize('content', [b'', b'not a torch file at all', 'truncated'])
def test_auto_resume_skips_a_broken_newest_state_naming_it(tmp_path, capsys, content):
    good_state(tmp_path / '2.state', 2)
    if content == 'truncated':
        good_state(tmp_path / '4.state', 4)
        data = (tmp_path / '4.state').read_bytes()
        content = data[:len(data) // 2]
    (tmp_path / '4.state').write_bytes(content)
    state = load_resume_state(resume_opt(tmp_path))
    assert state['iter'] == 2
    err = capsys.readouterr().err
    assert str(tmp_path / '4.state') in err and len(err.strip().splitlines()) == 1


def test_auto_resume_without_any_readable_state_starts_fresh(tmp_path):
    (tmp_path / '4.state').write_bytes(b'')
    assert load_resume_state(resume_opt(tmp_path)) is None


def test_basicsr_load_network_refuses_a_pickle_with_code(tmp_path, malicious_torch_file):
    from basicsr.models.base_model import BaseModel

    marker = tmp_path / 'MARKER'
    checkpoint = malicious_torch_file(tmp_path / 'net_g.pth', marker, payload_key='params')
    with pytest.raises(UnsafeOrInvalidFileError, match=re.escape(checkpoint)):
        BaseModel.load_network(object.__new__(BaseModel), torch.nn.Linear(2, 2), checkpoint)
    assert not marker.exists()


def test_every_basicsr_torch_load_goes_through_the_safe_loader():
    import basicsr

    root = osp.dirname(basicsr.__file__)
    callers = set()
    for path in glob.glob(osp.join(root, '**', '*.py'), recursive=True):
        with open(path, encoding='utf-8') as f:
            if 'torch.load(' in f.read():
                callers.add('basicsr.' + osp.relpath(path, root)[:-3].replace(os.sep, '.'))
    callers.discard('basicsr.version')
    assert callers <= set(hardening.BASICSR_TORCH_LOAD_MODULES), callers - set(hardening.BASICSR_TORCH_LOAD_MODULES)
    import importlib

    for name in hardening.BASICSR_TORCH_LOAD_MODULES:
        assert isinstance(importlib.import_module(name).torch, hardening._WeightsOnlyTorch), name


def test_load_torch_file_reads_real_states_and_names_bad_files(tmp_path, code_running_object):
    from basicsr.models.lr_scheduler import MultiStepRestartLR

    net = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam(net.parameters())
    net(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    state = {'epoch': 1, 'iter': 5, 'optimizers': [optimizer.state_dict()],
             'schedulers': [MultiStepRestartLR(optimizer, [10, 20]).state_dict()]}
    torch.save(state, tmp_path / '5.state')
    loaded = load_torch_file(str(tmp_path / '5.state'))
    assert loaded['iter'] == 5 and loaded['schedulers'][0]['milestones'] == {10: 1, 20: 1}
    with open(tmp_path / 'plain.pkl', 'wb') as f:
        pickle.dump(code_running_object(tmp_path / 'MARKER'), f)
    with pytest.raises(UnsafeOrInvalidFileError, match='plain.pkl'):
        load_torch_file(str(tmp_path / 'plain.pkl'))
    assert not (tmp_path / 'MARKER').exists()


# ------------------------------------------------------------------ YAML files


def test_yaml_loader_refuses_python_tags_in_one_line(tmp_path):
    marker = tmp_path / 'MARKER'
    path = malicious_yaml(tmp_path / 'evil.yml', marker)
    with pytest.raises(UnsafeOrInvalidFileError) as error:
        load_yaml_file(path)
    assert not marker.exists()
    message = str(error.value)
    assert path in message and 'line 3' in message and '\n' not in message


@pytest.mark.parametrize('through', ['file', 'base', 'base of base'])
def test_merged_options_never_run_yaml_tags(tmp_path, through):
    marker = tmp_path / 'MARKER'
    evil = malicious_yaml(tmp_path / 'evil.yml', marker)
    top = evil
    if through != 'file':
        (tmp_path / 'child.yml').write_text('_base_: evil.yml\nname: child\n')
        top = str(tmp_path / 'child.yml')
    if through == 'base of base':
        (tmp_path / 'grandchild.yml').write_text('_base_: ./child.yml\n')
        top = str(tmp_path / 'grandchild.yml')
    with pytest.raises(OptionFileError, match=re.escape(evil)):
        load_merged_options(top)
    assert not marker.exists()


def test_python_base_files_are_never_executed(tmp_path):
    marker = tmp_path / 'MARKER'
    (tmp_path / 'base.py').write_text(f'open({str(marker)!r}, "w")\nname = "x"\n')
    (tmp_path / 'child.yml').write_text('_base_: base.py\nname: child\n')
    with pytest.raises(OptionFileError, match='base.py'):
        load_merged_options(str(tmp_path / 'child.yml'))
    assert not marker.exists()


def test_basicsr_parse_options_uses_a_safe_loader(tmp_path, monkeypatch):
    from basicsr.utils.options import parse_options

    marker = tmp_path / 'MARKER'
    path = malicious_yaml(tmp_path / 'evil.yml', marker)
    monkeypatch.setattr(sys, 'argv', ['train.py', '-opt', path])
    with pytest.raises(UnsafeOrInvalidFileError, match=re.escape(path)):
        parse_options(str(tmp_path), is_train=True)
    assert not marker.exists()


def test_basicsr_ordered_yaml_still_reads_ordered_plain_options(tmp_path):
    import yaml
    from basicsr.utils.options import ordered_yaml

    loaded = yaml.load('b: 1\na: !!float 1e-4\nc: [1, 2]\n', Loader=ordered_yaml()[0])
    assert list(loaded) == ['b', 'a', 'c'] and loaded['a'] == 1e-4


def test_sfmnet_infer_opt_never_runs_yaml_tags(tmp_path, capsys):
    from sfmnet_cli.infer import main

    marker = tmp_path / 'MARKER'
    evil = malicious_yaml(tmp_path / 'evil.yml', marker)
    (tmp_path / 'child.yml').write_text('_base_: evil.yml\nname: child\n')
    for option_file in (evil, str(tmp_path / 'child.yml')):
        assert main([str(tmp_path), '--output', str(tmp_path / 'out'), '--checkpoint', 'none.pth',
                     '--opt', option_file]) == 1
        err = capsys.readouterr().err.strip()
        assert evil in err and len(err.splitlines()) == 1
    assert not marker.exists()


def test_launch_check_refuses_yaml_tags_in_one_line(tmp_path, capsys):
    from sfmnet_plugin.launch.cli import main

    marker = tmp_path / 'MARKER'
    evil = malicious_yaml(tmp_path / 'evil.yml', marker)
    with pytest.raises(SystemExit) as exit_info:
        main('train', root_path=str(tmp_path / 'root'), argv=['-opt', evil])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert evil in err and len(err.splitlines()) == 1 and not marker.exists()
    assert not (tmp_path / 'root').exists()


def test_training_launcher_refuses_yaml_tags_in_a_base_before_anything_runs(tmp_path, launcher_env, repo_root):
    marker = tmp_path / 'MARKER'
    evil = malicious_yaml(tmp_path / 'evil.yml', marker)
    (tmp_path / 'child.yml').write_text('_base_: evil.yml\nname: child\n')
    option_file = str(tmp_path / 'child.yml')
    result = subprocess.run([sys.executable, 'sfmnet_plugin/train.py', '-opt', option_file], cwd=repo_root,
                            env=launcher_env(tmp_path / 'root'), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and evil in result.stderr
    assert not marker.exists() and not (tmp_path / 'root').exists()


def test_force_yml_is_applied_safely_and_never_reaches_basicsr(tmp_path, capsys, repo_root):
    """BasicSR applies --force_yml with exec/eval; the launchers apply it to the merged file with a safe loader."""
    import yaml

    from sfmnet_plugin.launch.cli import main, parse_command_line
    from sfmnet_plugin.launch.pipeline import basicsr_option_file

    options = load_merged_options(osp.join(repo_root, 'options', 'train_SFMNet_x8.yml'))
    path = str(tmp_path / 'x.yml')
    with open(path, 'w') as f:
        yaml.safe_dump(options, f)
    argv = ['-opt', path, '--force_yml', 'train:total_iter=6', 'train:optim_g:lr=!!float 2e-4',
            'train:scheduler:milestones=[15000]', 'network_g:num_feat=none', '--auto_resume']
    request = parse_command_line('train', argv, program='train.py')
    with basicsr_option_file(request) as option_file:
        assert request.basicsr_argv(option_file) == ['train.py', '-opt', option_file, '--auto_resume']
        merged = load_yaml_file(option_file)
    assert merged['train']['total_iter'] == 6 and merged['train']['optim_g']['lr'] == 2e-4
    assert merged['train']['scheduler']['milestones'] == [15000] and merged['network_g']['num_feat'] is None

    marker = tmp_path / 'MARKER'
    evil = f'name=!!python/object/apply:builtins.open ["{marker}", "w"]'
    with pytest.raises(SystemExit) as exit_info:
        main('train', root_path=str(tmp_path / 'root'), argv=['-opt', path, '--force_yml', evil])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and '--force_yml' in err and not marker.exists()


def alias_bomb(path, levels=9):
    """A "billion laughs" option file: 9 levels of 9 aliases each, 9**9 values once expanded, in a dozen lines."""
    lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x]']
    lines += [f'a{i}: &a{i} [{", ".join([f"*a{i - 1}"] * 9)}]' for i in range(1, levels)]
    path.write_text('\n'.join(lines + ['name: bomb', '']))
    return str(path)


def test_a_yaml_alias_bomb_fails_fast_in_one_line(tmp_path, capsys):
    """Refused from the structure, before anything expands: the launch check and BasicSR's own parser."""
    import time

    import basicsr.utils.options as options

    from sfmnet_plugin.launch.cli import main as launch

    bomb = alias_bomb(tmp_path / 'bomb.yml')
    start = time.monotonic()
    with pytest.raises(SystemExit) as exit_info:
        launch('train', str(tmp_path / 'root'), ['-opt', bomb])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and bomb in err and 'an alias bomb' in err
    with pytest.raises(UnsafeOrInvalidFileError, match='alias bomb'):
        with open(bomb, encoding='utf-8') as f:
            yaml.load(f, Loader=options.ordered_yaml()[0])
    assert time.monotonic() - start < 5
    (tmp_path / 'loop.yml').write_text('a: &a [1, *a]\n')
    with pytest.raises(UnsafeOrInvalidFileError, match='refers to its own anchor'):
        load_yaml_file(str(tmp_path / 'loop.yml'))
    # ordinary anchors and aliases still work
    (tmp_path / 'ok.yml').write_text('base: &b {lr: 0.1}\ng: *b\nd: *b\n')
    assert load_yaml_file(str(tmp_path / 'ok.yml'))['d'] == {'lr': 0.1}
