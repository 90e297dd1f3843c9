"""Official SPARNet-family checkpoints: recognised, checked and loaded, on state dicts built from the official key list
(``tests/data/sparnet_official_keys.txt``: names, shapes and dtypes of all four released networks).

The two large networks (SPARNetHD G and D) are handled on the meta device: shapes only, no memory.
"""
import json
import os

import pytest
import torch
from basicsr.archs import build_network
from basicsr.models.base_model import BaseModel

from sfmnet_cli.convert_official import main as convert_main
from sfmnet_plugin.archs.sparnet_arch import SPARNet
from sfmnet_plugin.checkpoints import (
    CheckpointConversionError,
    convert_official_checkpoint,
    recognise_official_checkpoint,
)

OFFICIAL_KEYS = os.path.join('tests', 'data', 'sparnet_official_keys.txt')

# key-file section title -> (name the converter reports, tensors, parameters) from the section headers
SECTIONS = {
    'SPARNet (released': ('SPARNet', 1154, 10_518_867),
    'SPARNet-Light-Attn3D': ('SPARNet-Light-Attn3D', 605, 5_242_211),
    'SPARNetHD generator': ('SPARNetHD generator (net_G, or its EMA copy net_H)', 892, 85_793_412),
    'SPARNetHD MultiScaleDiscriminator': ('SPARNetHD multi-scale discriminator', 84, 11_750_403),
}
BUFFER_SUFFIXES = ('running_mean', 'running_var', 'num_batches_tracked', 'weight_u', 'weight_v')


def official_state_dict(layout, device='cpu', seed=0):
    """An official layout filled with random values (distinct, so a misplaced tensor would show)."""
    generator = torch.Generator().manual_seed(seed)
    state_dict = {}
    for key, (shape, dtype) in layout.items():
        if device == 'meta':
            state_dict[key] = torch.empty(shape, dtype=dtype, device='meta')
        elif dtype.is_floating_point:
            state_dict[key] = torch.rand(shape, generator=generator) + 0.5  # positive: valid running_var
        else:
            state_dict[key] = torch.randint(0, 1000, shape, generator=generator, dtype=dtype)
    return state_dict


@pytest.fixture(scope='module')
def sparnet_sd(official_key_listing):
    return official_state_dict(official_key_listing(OFFICIAL_KEYS, 'SPARNet (released'))


@pytest.mark.parametrize('section', list(SECTIONS))
def test_every_official_network_is_recognised_checked_and_loads_strictly(official_key_listing, section):
    name, num_tensors, num_params = SECTIONS[section]
    layout = official_key_listing(OFFICIAL_KEYS, section)
    assert len(layout) == num_tensors
    assert sum(torch.Size(shape).numel() for key, (shape, _) in layout.items()
               if not key.endswith(BUFFER_SUFFIXES)) == num_params
    official = official_state_dict(layout, device='meta')
    for state_dict in (official, {f'module.{key}': t for key, t in official.items()}):  # DataParallel prefixes
        converted, found = convert_official_checkpoint(state_dict)
        assert found.name == name
        assert list(converted) == list(official) and all(converted[k] is official[k] for k in official)
    with torch.device('meta'):
        network = build_network(dict(found.network_options))
    network.load_state_dict(converted, strict=True, assign=True)
    assert sum(p.numel() for p in network.parameters()) == num_params


def test_released_sparnet_weights_land_in_place_and_run(sparnet_sd):
    converted, found = convert_official_checkpoint(sparnet_sd)
    assert found.network_options == {'type': 'SPARNet', 'upscale': 8}
    model = build_network(dict(found.network_options))
    model.load_state_dict(converted, strict=True)
    assert torch.equal(model.encoder[1].att_func.b2_plus_1.conv2d.weight,
                       sparnet_sd['encoder.1.att_func.b2_plus_1.conv2d.weight'])
    assert torch.equal(model.res_layers[9].conv2.norm.norm.running_var,
                       sparnet_sd['res_layers.9.conv2.norm.norm.running_var'])
    assert torch.equal(model.decoder[2].att_func.out_block[0].conv2d.bias,
                       sparnet_sd['decoder.2.att_func.out_block.0.conv2d.bias'])


@pytest.mark.parametrize('options, name', [
    (dict(res_depth=4), 'SPARNet (res_depth=4)'),
    (dict(min_ch=8, max_ch=16, in_size=32, out_size=32, min_feat_size=8, res_depth=0, bottleneck_size=16,
          att_name='spar3d', norm_type='none', relu_type='prelu'), None),
    (dict(max_ch=64, norm_type='in', spectral_norm=True), None),
])
def test_plugin_checkpoints_of_other_configurations_round_trip(options, name):
    with torch.device('meta'):
        model = SPARNet(**options)
    state_dict = model.state_dict()
    converted, found = convert_official_checkpoint(state_dict)
    if name:
        assert found.name == name
    options_found = dict(found.network_options)
    with torch.device('meta'):
        rebuilt = build_network(options_found)
    rebuilt.load_state_dict(converted, strict=True, assign=True)
    assert {k: t.shape for k, t in rebuilt.state_dict().items()} == {k: t.shape for k, t in state_dict.items()}


def test_a_wrong_checkpoint_names_the_first_mismatched_key(official_key_listing, sparnet_sd):
    broken = dict(sparnet_sd)
    broken['res_layers.3.conv1.conv2d.weight'] = torch.zeros(128, 64, 3, 3)
    del broken['decoder.1.att_func.b3_2.norm.norm.bias']
    with pytest.raises(CheckpointConversionError) as error:
        convert_official_checkpoint(broken)
    message = str(error.value)
    assert message.startswith("Not an official SPARNet state dict: first mismatch: key 'res_layers.3.conv1.conv2d."
                              "weight' has shape (128, 64, 3, 3), expected (128, 128, 3, 3).")
    assert 'missing keys (1): decoder.1.att_func.b3_2.norm.norm.bias' in message
    broken = dict(sparnet_sd, **{'encoder.1.extra.weight': torch.zeros(1)})
    with pytest.raises(CheckpointConversionError, match="first mismatch: unexpected key 'encoder.1.extra.weight'"):
        convert_official_checkpoint(broken)
    discriminator = official_state_dict(official_key_listing(OFFICIAL_KEYS, 'SPARNetHD MultiScaleDiscriminator'),
                                        device='meta')
    del discriminator['D_pool.1.model.2.conv2d.weight_u']
    with pytest.raises(CheckpointConversionError, match="^Not an official SPARNetHD multi-scale discriminator state "
                                                        "dict: first mismatch: missing key 'D_pool.1.model.2.conv2d"):
        convert_official_checkpoint(discriminator)
    with pytest.raises(CheckpointConversionError, match='Not an official checkpoint of a known network'):
        convert_official_checkpoint({'conv_first.weight': torch.zeros(1)})
    assert recognise_official_checkpoint({'conv_first.weight': torch.zeros(1)}) is None


def test_cli_converts_reports_the_network_and_basicsr_loads_it(tmp_path, sparnet_sd, capsys):
    source, target = tmp_path / 'SPARNet-V16-S4-epoch20.pth', tmp_path / 'sparnet.pth'
    torch.save({f'module.{key}': t for key, t in sparnet_sd.items()}, source)
    assert convert_main([str(source), str(target)]) == 0
    capsys.readouterr()
    model = SPARNet()
    BaseModel({'num_gpu': 0, 'is_train': False}).load_network(model, str(target), strict=True, param_key='params')
    assert torch.equal(model.out_conv.conv2d.weight, sparnet_sd['out_conv.conv2d.weight'])
    # the released file loads with BasicSR's loader as it is too: the names are the plugin's
    BaseModel({'num_gpu': 0, 'is_train': False}).load_network(model, str(source), strict=True, param_key=None)
    assert convert_main([str(source), str(target)]) == 1  # never overwrites
    assert 'already exists' in capsys.readouterr().err


def test_cli_output_names_the_network_and_refuses_a_wrong_checkpoint(tmp_path, sparnet_sd, capsys):
    source, target = tmp_path / 'official.pth', tmp_path / 'out.pth'
    torch.save(sparnet_sd, source)
    assert convert_main([str(source), str(target)]) == 0
    out = capsys.readouterr().out
    assert out.startswith('Found: SPARNet. ') and '1154 tensors, 10,518,867 parameters' in out
    broken = tmp_path / 'broken.pth'
    torch.save({key: t for key, t in sparnet_sd.items() if key != 'encoder.2.conv2.conv2d.weight'}, broken)
    assert convert_main([str(broken), str(tmp_path / 'never.pth')]) == 1
    assert "first mismatch: missing key 'encoder.2.conv2.conv2d.weight'" in capsys.readouterr().err
    assert not (tmp_path / 'never.pth').exists()


def test_infer_takes_raw_official_and_converted_sparnet_checkpoints(tmp_path, check_restores_like):
    torch.manual_seed(0)
    model = SPARNet()
    raw, converted = tmp_path / 'raw.pth', tmp_path / 'converted.pth'
    torch.save({f'module.{key}': t for key, t in model.state_dict().items()}, raw)
    assert convert_main([str(raw), str(converted)]) == 0
    # no network options: the checkpoint names SPARNet x8
    restorer = check_restores_like(model, raw, 'SPARNet', infer_with=[
        (converted, []), (raw, ['--arch-json', json.dumps({'type': 'SPARNet'})])])
    assert restorer.options == {'type': 'SPARNet', 'upscale': 8}
