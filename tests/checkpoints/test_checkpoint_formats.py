"""Networks as ``.safetensors`` and ``.pth``: every loader reads both to the same tensors, with the same errors, and a
checkpoint the plugin wrote carries the options that build its network."""
import json
import types

import pytest
import torch
from basicsr.archs import build_network
from basicsr.models.base_model import BaseModel

from sfmnet_cli import convert_official
from sfmnet_cli.infer import main as infer_main
from sfmnet_plugin.checkpoints.io import is_safetensors_file, load_checkpoint_file, save_checkpoint_file
from sfmnet_plugin.compat.model_methods import plugin_model_class
from sfmnet_plugin.compat.resume import load_resume_state
from sfmnet_plugin.config.option_schema import option_key_problems
from sfmnet_plugin.inference import FaceRestorer, InferenceError
from sfmnet_plugin.utils.safe_loading import UnsafeOrInvalidFileError

TINY = {'type': 'SFMNet', 'upscale': 4, 'num_feat': 8, 'num_heads': 2, 'num_levels': 2,
        'keep_unused_attention': False}
FORMATS = ('pth', 'safetensors')


def tiny_network(seed=0, options=TINY):
    torch.manual_seed(seed)
    return build_network(dict(options))


def state_of(network):
    return {name: tensor.clone() for name, tensor in network.state_dict().items()}


@pytest.fixture
def saved(tmp_path):
    """``{format: path}`` of one tiny SFMNet saved by the plugin in both formats (with its network_g), and its state."""
    state = state_of(tiny_network())
    paths = {}
    for network_format in FORMATS:
        paths[network_format] = str(tmp_path / f'net.{network_format}')
        save_checkpoint_file({'params': state}, paths[network_format], {'network_g': TINY})
    return paths, state


def assert_same_tensors(first, second):
    assert sorted(first) == sorted(second)  # safetensors stores names sorted
    for name in first:
        assert torch.equal(first[name], second[name]), name


def basicsr_load_network(path, options=TINY, strict=True, param_key='params'):
    """BasicSR's own ``BaseModel.load_network`` (what ``path.pretrain_network_g`` and resume run) into a fresh net."""
    net = tiny_network(seed=1, options=options)
    model = types.SimpleNamespace(get_bare_model=lambda network: network,
                                  _print_different_keys_loading=lambda *args: None)
    BaseModel.load_network(model, net, path, strict, param_key)
    return net


def test_every_loader_reads_both_formats_to_identical_tensors(saved):
    paths, state = saved
    assert is_safetensors_file(paths['safetensors']) and not is_safetensors_file(paths['pth'])
    for path in paths.values():
        checkpoint = load_checkpoint_file(path)
        assert_same_tensors(checkpoint['params'], state)
        assert checkpoint['network_g'] == TINY
        assert_same_tensors(FaceRestorer(path, device='cpu').net.state_dict(), state)  # no options given
        assert_same_tensors(basicsr_load_network(path).state_dict(), state)


def test_a_safetensors_file_is_recognised_by_content_and_foreign_ones_are_plain_state_dicts(saved, tmp_path):
    from safetensors.torch import save_file

    paths, state = saved
    renamed = tmp_path / 'renamed.pth'  # a safetensors file under a .pth name is still read without unpickling
    renamed.write_bytes(open(paths['safetensors'], 'rb').read())
    assert_same_tensors(load_checkpoint_file(str(renamed))['params'], state)
    foreign = str(tmp_path / 'foreign.safetensors')  # what spandrel/traiNNer-redux write: names -> tensors only
    save_file(state, foreign)
    assert_same_tensors(basicsr_load_network(foreign).state_dict(), state)
    assert_same_tensors(FaceRestorer(foreign, network=TINY, device='cpu').net.state_dict(), state)


def test_ema_checkpoints_keep_both_state_dicts(tmp_path):
    params, ema = state_of(tiny_network(0)), state_of(tiny_network(1))
    for network_format in FORMATS:
        path = str(tmp_path / f'ema.{network_format}')
        save_checkpoint_file({'params': params, 'params_ema': ema}, path, {'network_g': TINY})
        assert_same_tensors(basicsr_load_network(path, param_key='params').state_dict(), params)
        assert_same_tensors(basicsr_load_network(path, param_key='params_ema').state_dict(), ema)
        assert_same_tensors(FaceRestorer(path, device='cpu').net.state_dict(), ema)  # params_ema preferred


def wrong_checkpoints(tmp_path, network_format):
    """A checkpoint with one mis-shaped tensor and one with a missing key, in ``network_format``."""
    state = state_of(tiny_network())
    mis_shaped = dict(state, **{'spatial_branch.head.conv.weight': torch.zeros(4, 3, 3, 3)})
    missing = {name: tensor for name, tensor in state.items() if name != 'spatial_branch.head.act.weight'}
    paths = []
    for kind, broken in (('shape', mis_shaped), ('missing', missing)):
        path = tmp_path / network_format / f'{kind}.ckpt'
        path.parent.mkdir(exist_ok=True)
        save_checkpoint_file({'params': broken}, str(path), None, network_format)
        paths.append(path)
    return paths


def test_wrong_shapes_and_missing_keys_get_the_same_error_in_both_formats(tmp_path):
    messages = {}
    for network_format in FORMATS:
        for path in wrong_checkpoints(tmp_path, network_format):
            with pytest.raises(InferenceError) as restorer_error:
                FaceRestorer(str(path), network=TINY, device='cpu')
            with pytest.raises(RuntimeError) as basicsr_error:
                basicsr_load_network(str(path))
            messages.setdefault(path.name, []).append(
                (str(restorer_error.value).replace(str(path), 'CKPT'), str(basicsr_error.value)))
    for name, (pth, safetensors) in messages.items():
        assert pth == safetensors, name
    assert 'num_feat 4' in messages['shape.ckpt'][0][0]
    assert 'missing keys (1): spatial_branch.head.act.weight' in messages['missing.ckpt'][0][0]


def test_a_corrupt_safetensors_file_is_one_line_naming_it(tmp_path, saved):
    paths, _ = saved
    truncated = tmp_path / 'truncated.safetensors'
    truncated.write_bytes(open(paths['safetensors'], 'rb').read()[:200])
    with pytest.raises(UnsafeOrInvalidFileError, match=r'truncated\.safetensors: not a readable safetensors') as error:
        load_checkpoint_file(str(truncated))
    assert '\n' not in str(error.value)
    with pytest.raises(InferenceError, match='truncated.safetensors'):
        FaceRestorer(str(truncated), network=TINY, device='cpu')


@pytest.fixture
def lr_faces(tmp_path, write_real_face_pairs):
    return write_real_face_pairs(str(tmp_path / 'faces'), count=2, gt_size=32, scale=4, seed=0) + '/lq'


def test_sfmnet_infer_needs_no_option_file_for_a_checkpoint_the_plugin_wrote(saved, lr_faces, tmp_path):
    paths, _ = saved
    for network_format, path in paths.items():
        assert infer_main([lr_faces, '--output', str(tmp_path / network_format), '--checkpoint', path,
                           '--device', 'cpu']) == 0
    for name in ('face000.png', 'face001.png'):  # the same network from either file: the same SR images
        assert (tmp_path / 'pth' / name).read_bytes() == (tmp_path / 'safetensors' / name).read_bytes()


def test_an_explicit_network_wins_over_the_stored_one(saved):
    paths, _ = saved
    with pytest.raises(InferenceError, match='does not fit network_g'):
        FaceRestorer(paths['safetensors'], network=dict(TINY, num_feat=16), device='cpu')


@pytest.mark.parametrize('network_format', FORMATS)
def test_sfmnet_infer_names_what_is_missing_for_a_checkpoint_without_options(lr_faces, tmp_path, capsys,
                                                                             network_format):
    path = str(tmp_path / f'bare.{network_format}')
    save_checkpoint_file({'params': state_of(tiny_network())}, path)
    assert infer_main([lr_faces, '--output', str(tmp_path / 'sr'), '--checkpoint', path]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count('\n') == 0 and 'carries no network options' in error and '--opt' in error and path in error


def test_training_saves_safetensors_with_its_options_and_resume_finds_them(tmp_path):
    models, states = tmp_path / 'models', tmp_path / 'training_states'
    models.mkdir(), states.mkdir()
    model = object.__new__(plugin_model_class(BaseModel))  # what save_network and save_training_state use
    model.opt = {'dist': False, 'network_g': TINY,
                 'path': {'models': str(models), 'training_states': str(states), 'network_format': 'safetensors'}}
    model.optimizers, model.schedulers = [], []
    net = tiny_network()
    model.save_network(net, 'net_g', 6)
    model.save_training_state(0, 6)
    assert sorted(p.name for p in models.iterdir()) == ['net_g_6.safetensors']
    from safetensors import safe_open

    with safe_open(str(models / 'net_g_6.safetensors'), framework='pt') as f:
        assert json.loads(f.metadata()['network_g']) == TINY
    opt = {'auto_resume': True, 'num_gpu': 0, 'network_g': TINY,
           'path': {'training_states': str(states), 'models': str(models), 'resume_state': None}}
    assert load_resume_state(opt)['iter'] == 6
    assert opt['path']['pretrain_network_g'] == str(models / 'net_g_6.safetensors')
    assert_same_tensors(basicsr_load_network(opt['path']['pretrain_network_g']).state_dict(), net.state_dict())


def test_the_option_schema_checks_the_network_format():
    opt = {'model_type': 'SRModel', 'path': {'network_format': 'safetensor'}}
    assert option_key_problems(opt) == ["path.network_format: 'safetensor' is not a network file format "
                                        '(one of pth, safetensors)']
    assert option_key_problems({'model_type': 'SRModel', 'path': {'network_format': 'safetensors'}}) == []


def test_convert_official_writes_safetensors_with_the_networks_options(tmp_path):
    from sfmnet_plugin.archs.sparnet_arch import SPARNet

    torch.manual_seed(0)
    official = tmp_path / 'official.pth'
    torch.save(SPARNet(upscale=8).state_dict(), official)  # SPARNet's official names are the plugin's
    outputs = {network_format: tmp_path / f'converted.{network_format}' for network_format in FORMATS}
    for network_format, output in outputs.items():
        assert convert_official.main([str(official), str(output), '--format', network_format]) == 0
    assert is_safetensors_file(str(outputs['safetensors']))
    checkpoints = [load_checkpoint_file(str(path)) for path in outputs.values()]
    assert_same_tensors(checkpoints[0]['params'], checkpoints[1]['params'])
    assert checkpoints[0]['network_g'] == checkpoints[1]['network_g']
    assert checkpoints[0]['network_g']['type'] == 'SPARNet'
