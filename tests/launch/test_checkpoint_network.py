"""Test and fine-tuning runs take ``network_g`` from their pretrained checkpoint when the option file gives none, and a
checkpoint that does not fit the option file's ``network_g`` is a short pre-flight message, not BasicSR's traceback."""
import pytest
import torch
from basicsr.archs import build_network

from sfmnet_plugin.checkpoints.io import save_checkpoint_file
from sfmnet_plugin.launch.cli import parse_command_line
from sfmnet_plugin.launch.preflight import PreflightError, check_run

SCALE, SIZE = 4, 32
NETWORK = {'type': 'SFMNet', 'upscale': SCALE, 'num_feat': 8, 'num_heads': 2, 'num_levels': 2,
           'keep_unused_attention': False}


@pytest.fixture(scope='module')
def faces(tmp_path_factory, write_train_val_faces):
    root = tmp_path_factory.mktemp('faces')
    write_train_val_faces(str(root), 2, SIZE, SCALE)
    return root


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp('models') / 'net_g_10.safetensors'
    save_checkpoint_file({'params': build_network(dict(NETWORK)).state_dict()}, str(path), {'network_g': NETWORK})
    return path


def options_of(faces, checkpoint, network_g=None):
    opt = {'name': 'fit', 'model_type': 'SFMNetModel', 'scale': SCALE, 'num_gpu': 0,
           'datasets': {'test_1': {'name': 'faces', 'type': 'PairedFaceDataset', 'dataroot_gt': f'{faces}/val/gt',
                                   'dataroot_lq': f'{faces}/val/lq', 'io_backend': {'type': 'disk'}}},
           'path': {'pretrain_network_g': str(checkpoint), 'strict_load_g': True},
           'val': {'save_img': False, 'metrics': {'psnr': {'type': 'calculate_face_psnr', 'crop_border': 2}}}}
    if network_g is not None:
        opt['network_g'] = network_g
    return opt


@pytest.fixture
def request_of(tmp_path, write_yaml):
    """``request_of(opt)``: the launcher's request for a test run of the options ``opt``."""
    return lambda opt: parse_command_line('test', ['-opt', str(write_yaml(tmp_path / 'test.yml', opt))])


def test_without_network_g_the_checkpoints_own_is_used(faces, checkpoint, request_of):
    request = request_of(options_of(faces, checkpoint))
    assert request.options['network_g'] == NETWORK
    assert request.writes_merged_file  # BasicSR reads the options with the network filled in
    check_run(request)  # nothing missing


def test_a_network_g_that_does_not_fit_is_a_short_message_naming_the_options(faces, checkpoint, request_of):
    request = request_of(options_of(faces, checkpoint, dict(NETWORK, num_feat=16, num_heads=4)))
    assert not request.network_from_checkpoint
    with pytest.raises(PreflightError) as error:
        check_run(request)
    [problem] = error.value.problems
    lines = problem.splitlines()
    assert lines[0].startswith(f'path.pretrain_network_g: checkpoint {checkpoint} does not fit network_g ')
    assert any('the checkpoint has num_feat 8 but the network has 16' in line for line in lines)
    assert "remove network_g from the options to use the checkpoint's own" in lines[-1]
    assert len(lines) <= 8


def test_a_fitting_network_g_and_non_strict_loading_pass(faces, checkpoint, request_of, monkeypatch):
    from basicsr.utils import logger

    monkeypatch.setattr(logger, 'initialized_logger', {})
    check_run(request_of(options_of(faces, checkpoint, dict(NETWORK))))
    # the check builds the network without logging: BasicSR's logger is set up later, with the run's log file
    assert logger.initialized_logger == {}
    loose = options_of(faces, checkpoint, dict(NETWORK, num_feat=16, num_heads=4))
    loose['path']['strict_load_g'] = False
    check_run(request_of(loose))
