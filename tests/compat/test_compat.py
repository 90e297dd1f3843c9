"""The basicsr 1.4.2 compatibility fixes, one test per fix, the plugin's saving and resume, and the registrations."""
import errno
import os
import re
import subprocess
import sys
from os import path as osp

import lmdb
import pytest
import torch

import sfmnet_plugin
from sfmnet_plugin import compat as _compat
from sfmnet_plugin.compat import resume as compat_resume
from sfmnet_plugin.compat.changes import process_changes
from sfmnet_plugin.compat.model_methods import plugin_model_class
from sfmnet_plugin.config.option_files import load_merged_options
from sfmnet_plugin.launch.cli import parse_command_line
from sfmnet_plugin.launch.pipeline import basicsr_option_file
from sfmnet_plugin.utils.safe_loading import load_yaml_file

# Every component the plugin registers, by registry; a missing one is a broken option file for users.
EXPECTED_REGISTRATIONS = {
    'arch': {'SFMNet', 'SFMNetSpatialDiscriminator', 'SFMNetFrequencyDiscriminator', 'SPARNet', 'SPARNetHD',
             'MultiScalePatchDiscriminator'},
    'dataset': {'PairedFaceDataset'},
    'loss': {'FrequencyLoss'},
    'model': {'FaceSRModel', 'SFMNetModel', 'SFMNetGANModel'},
    'metric': {'calculate_face_psnr', 'calculate_face_ssim', 'calculate_lpips'},
}


def plugin_registrations():
    from basicsr.utils import registry

    registries = {'arch': registry.ARCH_REGISTRY, 'dataset': registry.DATASET_REGISTRY,
                  'loss': registry.LOSS_REGISTRY, 'model': registry.MODEL_REGISTRY,
                  'metric': registry.METRIC_REGISTRY}
    return {kind: {name for name, obj in reg._obj_map.items() if obj.__module__.startswith('sfmnet_plugin.')}
            for kind, reg in registries.items()}


def test_every_component_is_registered_under_its_own_name():
    registered = plugin_registrations()
    for kind, names in EXPECTED_REGISTRATIONS.items():
        assert names <= registered[kind], f'{kind}: missing {names - registered[kind]}'


def test_no_name_clash_with_basicsr_components():
    # BasicSR asserts unique names at registration, so a clash would already have failed the import;
    # a plugin component must also never be registered under BasicSR's '_basicsr' fallback suffix.
    for kind, names in plugin_registrations().items():
        assert not [n for n in names if n.endswith('_basicsr')], kind


@pytest.mark.parametrize('statement', ['import sfmnet_plugin, basicsr', 'import sfmnet_plugin; import basicsr.train'])
def test_import_plugin_then_basicsr(statement, repo_root):
    subprocess.run([sys.executable, '-c', statement], check=True, cwd=repo_root)


def test_functional_tensor_alias():
    from torchvision.transforms import _functional_tensor

    assert sys.modules['torchvision.transforms.functional_tensor'] is _functional_tensor
    from basicsr.data import degradations

    assert degradations.rgb_to_grayscale is _functional_tensor.rgb_to_grayscale


# What import sfmnet_plugin changes for the whole process; nothing else (tests/compat/test_import_scope.py).
IMPORT_CHANGES = {
    'basicsr.utils.file_client.LmdbBackend', 'basicsr.utils.dist_util.init_dist', 'basicsr.utils.options.init_dist',
    'basicsr.models.base_model.BaseModel.model_to_device', 'basicsr.utils.options.ordered_yaml',
    *(f'basicsr.{module}.torch' for module in ('models.base_model', 'train', 'archs.vgg_arch', 'archs.spynet_arch',
                                               'archs.basicvsr_arch', 'archs.tof_arch', 'archs.dfdnet_arch',
                                               'archs.inception')),
}


def test_fixes_are_installed_where_basicsr_looks_them_up():
    import basicsr.utils.file_client as file_client
    import basicsr.utils.options
    from basicsr.models.base_model import BaseModel

    assert set(process_changes()) == IMPORT_CHANGES
    assert basicsr.utils.options.init_dist.__module__ == 'sfmnet_plugin.compat.distributed'
    assert BaseModel.model_to_device.__module__ == 'sfmnet_plugin.compat.distributed'
    assert file_client.FileClient._backends['lmdb'] is file_client.LmdbBackend
    assert file_client.LmdbBackend.__module__ == 'sfmnet_plugin.compat.versions'
    init_dist = basicsr.utils.options.init_dist
    _compat.apply_import_fixes()  # idempotent
    assert basicsr.utils.options.init_dist is init_dist and set(process_changes()) == IMPORT_CHANGES


def test_init_dist_refuses_slurm_on_cpu_with_a_clear_message():
    if torch.cuda.is_available():
        pytest.skip('CPU behaviour')
    import basicsr.utils.options

    with pytest.raises(ValueError, match='torchrun'):
        basicsr.utils.options.init_dist('slurm')


def test_training_states_are_listed_highest_iteration_first(tmp_path):
    assert compat_resume.training_states_newest_first(str(tmp_path / 'missing')) == []
    for name in ('8.state', '12.state', '100.state', 'notes.txt', 'x.state'):
        (tmp_path / name).write_text('')
    assert compat_resume.training_states_newest_first(str(tmp_path)) == [
        str(tmp_path / f'{i}.state') for i in (100, 12, 8)]


def test_resume_state_from_the_experiment_folder_on_cpu(tmp_path):
    states = tmp_path / 'training_states'
    states.mkdir()
    torch.save({'iter': 6, 'epoch': 1, 'optimizers': [], 'schedulers': []}, states / '6.state')
    opt = {'auto_resume': True, 'num_gpu': 0, 'path': {'training_states': str(states)}}
    state = compat_resume.load_resume_state(opt)
    assert state['iter'] == 6 and opt['path']['resume_state'] == str(states / '6.state')
    with pytest.raises(FileNotFoundError, match='resume_state'):
        compat_resume.load_resume_state({'auto_resume': False, 'num_gpu': 0,
                                         'path': {'resume_state': str(tmp_path / 'nope.state')}})


def test_checkpoints_are_written_atomically(tmp_path):
    from basicsr.models.base_model import BaseModel

    model = object.__new__(plugin_model_class(BaseModel))  # only what the two save methods use
    model.opt = {'dist': False, 'path': {'models': str(tmp_path), 'training_states': str(tmp_path)}}
    model.optimizers, model.schedulers = [torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)], []
    net = torch.nn.Linear(2, 1)
    model.save_network(net, 'net_g', 7)
    model.save_network([net, net], 'net_g', -1, param_key=['params', 'params_ema'])
    model.save_training_state(1, 7)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['7.state', 'net_g_7.pth', 'net_g_latest.pth']
    assert torch.equal(torch.load(tmp_path / 'net_g_latest.pth')['params_ema']['weight'], net.weight)
    assert torch.load(tmp_path / '7.state', weights_only=False)['iter'] == 7
    # a save interrupted before its rename leaves only a '.partial' file, which resume ignores
    (tmp_path / '9.state.partial').write_bytes(b'trunc')
    assert compat_resume.training_states_newest_first(str(tmp_path)) == [str(tmp_path / '7.state')]


def test_one_lmdb_opened_by_two_readers(tmp_path):
    path = str(tmp_path / 'x.lmdb')
    with lmdb.open(path, map_size=1 << 20) as env, env.begin(write=True) as txn:
        txn.put(b'k', b'v')
    from basicsr.utils import FileClient

    first = FileClient('lmdb', db_paths=[path], client_keys=['gt'])
    second = FileClient('lmdb', db_paths=[path], client_keys=['lq'])  # lmdb >= 2 alone raises here
    assert first.get('k', 'gt') == second.get('k', 'lq') == b'v'
    with pytest.raises(FileNotFoundError, match='no data.mdb'):
        FileClient('lmdb', db_paths=[str(tmp_path / 'missing.lmdb')], client_keys=['gt'])


def test_local_rank_argument_from_torch_launchers(tmp_path, write_yaml):
    """torch >= 2 launchers pass ``--local-rank``; BasicSR's parser knows only ``--local_rank``."""
    option_file = str(write_yaml(tmp_path / 'x.yml', {'name': 'x'}))
    for argv in (['--local-rank=1', '-opt', option_file], ['-opt', option_file, '--local-rank', '1']):
        request = parse_command_line('train', [*argv, '--launcher', 'pytorch'], program='train.py')
        assert request.local_rank == 1
        assert request.basicsr_argv('x.yml') == ['train.py', '-opt', 'x.yml', '--launcher', 'pytorch',
                                                 '--local_rank', '1']


def test_option_inheritance_merges_nested_keys_and_delete(tmp_path, write_yaml):
    write_yaml(tmp_path / 'base.yml', {'name': 'base', 'train': {'lr': 1e-4, 'betas': [0.9, 0.99]},
                                       'val': {'metrics': {'psnr': {'type': 'a'}, 'ssim': {'type': 'b'}}}})
    child = write_yaml(tmp_path / 'child.yml', {'_base_': './base.yml', 'name': 'child', 'train': {'lr': 2e-4},
                                                'val': {'metrics': {'_delete_': True, 'psnr': {'type': 'c'}}}})
    merged = load_merged_options(str(child))
    assert merged == {'name': 'child', 'train': {'lr': 2e-4, 'betas': [0.9, 0.99]},
                      'val': {'metrics': {'psnr': {'type': 'c'}}}}
    request = parse_command_line('train', ['-opt', str(child), '--debug'], program='x')
    assert request.options == merged
    with basicsr_option_file(request) as option_file:
        assert osp.basename(option_file) == 'child.yml' and option_file != str(child)
        assert load_yaml_file(option_file) == merged
        assert request.basicsr_argv(option_file) == ['x', '-opt', option_file, '--debug']
    assert not osp.exists(option_file), 'the temporary merged file outlived the run'
    base_request = parse_command_line('train', ['-opt', str(tmp_path / 'base.yml')])
    with basicsr_option_file(base_request) as option_file:
        assert option_file == str(tmp_path / 'base.yml')


def test_package_version():
    assert sfmnet_plugin.__version__


@pytest.mark.parametrize('error, cause', [
    (OSError(errno.ENOSPC, 'No space left on device'), 'no space left on the disk (disk full)'),
    (OSError(errno.EROFS, 'Read-only file system'), 'read-only file system'),
    (PermissionError(errno.EACCES, 'Permission denied'), 'permission denied'),
    (RuntimeError('[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0'), 'unexpected pos 64 vs 0'),
])
def test_a_checkpoint_that_cannot_be_written_is_one_line(tmp_path, monkeypatch, error, cause):
    """Read-only folders, a full disk or a missing permission while saving: the path and the cause, nothing left."""
    from basicsr.models.base_model import BaseModel

    from sfmnet_plugin.utils.output_paths import OutputWriteError

    def failing_save(obj, path, *args, **kwargs):
        open(path, 'wb').write(b'half')  # a write cut short
        raise error

    model = object.__new__(plugin_model_class(BaseModel))
    model.opt = {'dist': False, 'path': {'models': str(tmp_path), 'training_states': str(tmp_path)}}
    model.optimizers, model.schedulers = [], []
    monkeypatch.setattr(torch, 'save', failing_save)
    with pytest.raises(OutputWriteError, match=re.escape(f'cannot write {tmp_path / "net_g_7.pth"}: {cause}')):
        model.save_network(torch.nn.Linear(2, 1), 'net_g', 7)
    with pytest.raises(OutputWriteError, match=re.escape(f'cannot write {tmp_path / "7.state"}: {cause}')):
        model.save_training_state(1, 7)
    assert os.listdir(tmp_path) == []


def test_a_checkpoint_folder_that_is_a_file_is_one_line(tmp_path):
    from basicsr.models.base_model import BaseModel

    from sfmnet_plugin.utils.output_paths import OutputWriteError

    (tmp_path / 'models').write_text('not a folder')
    model = object.__new__(plugin_model_class(BaseModel))
    model.opt = {'dist': False, 'path': {'models': str(tmp_path / 'models')}}
    with pytest.raises(OutputWriteError, match='cannot write .*models/net_g_7.pth: .*models is a file, not a folder'):
        model.save_network(torch.nn.Linear(2, 1), 'net_g', 7)
