"""Official SFMNet checkpoints -> plugin weights, checked against the released networks' key list
(``tests/data/sfmnet_official_keys.txt``: names and shapes of the official generator and both discriminators)."""
import ast
import os

import numpy as np
import pytest
import torch
from basicsr.models.base_model import BaseModel

from sfmnet_cli.convert_official import main
from sfmnet_plugin.archs.lightcnn_discriminator_arch import SFMNetFrequencyDiscriminator, SFMNetSpatialDiscriminator
from sfmnet_plugin.archs.sfmnet_arch import SFMNet
from sfmnet_plugin.checkpoints import CheckpointConversionError
from sfmnet_plugin.checkpoints.sfmnet import (
    convert_official_discriminator_state_dict,
    convert_official_state_dict,
    is_official_state_dict,
    official_to_plugin_key_map,
)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OFFICIAL_KEYS = os.path.join(REPO_ROOT, 'tests', 'data', 'sfmnet_official_keys.txt')


def official_shapes(network):
    """{key: shape} of one official network ('G', 'D' or 'DF') from the official key list."""
    shapes = {}
    with open(OFFICIAL_KEYS, encoding='utf-8') as f:
        for line in f:
            if line.startswith(f'{network} '):  # lines read "<network> <key> <shape tuple>"
                _, key, shape = line.split(maxsplit=2)
                shapes[key] = ast.literal_eval(shape.strip())
    return shapes


def random_official_state_dict(network='G', seed=0):
    """Official layout and shapes, filled with distinct random values so a misplaced tensor cannot go unnoticed."""
    generator = torch.Generator().manual_seed(seed)
    return {key: torch.randn(shape, generator=generator) for key, shape in official_shapes(network).items()}


@pytest.fixture(scope='module')
def official_sd():
    return random_official_state_dict()


def test_reference_key_list_is_the_official_generator():
    shapes = official_shapes('G')
    assert len(shapes) == 584
    assert sum(torch.Size(shape).numel() for shape in shapes.values()) == 8_799_622


def test_key_map_covers_exactly_the_official_and_plugin_keys():
    key_map = official_to_plugin_key_map()
    assert set(key_map) == set(official_shapes('G'))
    with torch.device('meta'):
        assert set(key_map.values()) == set(SFMNet().state_dict())
    assert len(set(key_map.values())) == len(key_map)  # one-to-one


def test_converted_weights_load_strictly_and_land_in_the_right_place(official_sd):
    model = SFMNet()
    model.load_state_dict(convert_official_state_dict(official_sd), strict=True)
    loaded = model.state_dict()
    for official_key, plugin_key in official_to_plugin_key_map().items():
        assert torch.equal(loaded[plugin_key], official_sd[official_key]), (official_key, plugin_key)

    def same(plugin_tensor, official_key):
        return torch.equal(plugin_tensor, official_sd[official_key])

    fusion = model.interactions['3']
    # official FuseBlock7 names are swapped: 'fre' convolves the spatial feature, 'spa' the frequency feature
    assert same(fusion.spatial_conv.weight, 'conv_fuse.3.fre.weight')
    assert same(fusion.frequency_conv.bias, 'conv_fuse.3.spa.bias')
    assert same(fusion.cross_attention.query.weight, 'conv_fuse.3.fre_att.q.weight')
    assert same(fusion.cross_attention.key_value_dwconv.weight, 'conv_fuse.3.fre_att.kv_dwconv.weight')
    assert same(fusion.unused_attention.temperature, 'conv_fuse.3.spa_att.temperature')
    assert same(fusion.gate[1].weight, 'conv_fuse.3.fuse.1.weight')
    frequency, spatial = model.frequency_branch, model.spatial_branch
    assert same(frequency.head.act.weight, 'head_fre.0.act.weight')
    assert same(frequency.downsamplers[1].channel_reduce.weight, 'down2_fre.0.layers.2.layers.weight')
    assert same(frequency.encoder_blocks[1].amplitude_refine[2].bias, 'down2_fre.1.amp_fuse.2.bias')
    assert same(frequency.encoder_refine_blocks[0].in_conv.weight, 'down1_fre_mo.0.fpre.weight')
    assert same(frequency.neck_refine_block.phase_refine[0].weight, 'neck_fre_mo.0.pha_fuse.0.weight')
    assert same(frequency.upsamplers[2].channel_expand.bias, 'up3_fre.0.0.bias')
    assert same(frequency.decoder_blocks[0].out_conv.weight, 'up1_fre.1.post.weight')
    assert same(frequency.tail.conv.weight, 'tail_fre.0.layers.weight')
    assert same(spatial.neck_block.resblocks[1].conv2.weight, 'neck.0.body.1.layers.1.layers.weight')
    assert same(spatial.decoder_refine_blocks[2].skip_scale, 'up3_mo.0.re_scale.scale')
    assert same(spatial.encoder_blocks[2].out_conv.act.weight, 'down3.1.body.2.act.weight')
    assert same(spatial.upsamplers[0].act.weight, 'up1.0.2.weight')


def test_round_trip_through_official_names_is_the_identity():
    torch.manual_seed(0)
    model = SFMNet(upscale=2)
    plugin_to_official = {plugin: official for official, plugin in official_to_plugin_key_map().items()}
    as_official = {plugin_to_official[key]: tensor for key, tensor in model.state_dict().items()}
    converted = convert_official_state_dict(as_official)
    assert converted.keys() == model.state_dict().keys()
    assert all(torch.equal(converted[key], tensor) for key, tensor in model.state_dict().items())
    reloaded = SFMNet(upscale=2)
    reloaded.load_state_dict(converted, strict=True)
    lr = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(lr, return_frequency=True), model(lr, return_frequency=True),
                                   rtol=0, atol=0)


def test_dropping_the_unused_attention(official_sd):
    converted = convert_official_state_dict(official_sd, keep_unused_attention=False)
    assert len(converted) == 584 - 84
    SFMNet(keep_unused_attention=False).load_state_dict(converted, strict=True)


def test_dataparallel_prefixes_are_accepted(official_sd):
    prefixed = {f'module.{key}': tensor for key, tensor in official_sd.items()}
    assert is_official_state_dict(prefixed)
    assert convert_official_state_dict(prefixed).keys() == convert_official_state_dict(official_sd).keys()


def test_is_official_state_dict(official_sd):
    assert is_official_state_dict(official_sd)
    assert not is_official_state_dict(convert_official_state_dict(official_sd))


def test_missing_unexpected_and_misshaped_keys_are_listed(official_sd):
    broken = dict(official_sd)
    del broken['conv_fuse.5.fre_att.temperature']
    broken['conv_fuse.14.fre.weight'] = torch.zeros(64, 64, 3, 3)
    broken['tail.0.layers.weight'] = torch.zeros(3, 32, 3, 3)
    with pytest.raises(CheckpointConversionError) as error:
        convert_official_state_dict(broken)
    message = str(error.value)
    assert 'missing keys (1): conv_fuse.5.fre_att.temperature' in message
    assert 'unexpected keys (1): conv_fuse.14.fre.weight' in message
    assert 'shape mismatches (1): tail.0.layers.weight (3, 32, 3, 3) (expected (3, 64, 3, 3))' in message


def test_a_plugin_checkpoint_is_not_mistaken_for_an_official_one(official_sd):
    with pytest.raises(CheckpointConversionError, match='missing keys'):
        convert_official_state_dict(convert_official_state_dict(official_sd))


def load_like_basicsr(network, path):
    """BasicSR's own loader, as used for path.pretrain_network_g with strict_load_g: true."""
    BaseModel({'num_gpu': 0, 'is_train': False}).load_network(network, path, strict=True, param_key='params')


@pytest.mark.parametrize('drop_unused_attention', [False, True])
def test_cli_writes_a_checkpoint_that_basicsr_loads_strictly(tmp_path, official_sd, drop_unused_attention):
    source, target = tmp_path / 'official.pth', tmp_path / 'converted.pth'
    # released files may be wrapped in {'state_dict': ...} and carry DataParallel's 'module.' prefixes
    torch.save({'state_dict': {f'module.{key}': tensor for key, tensor in official_sd.items()}}, source)
    argv = [str(source), str(target)] + (['--drop-unused-attention'] if drop_unused_attention else [])
    assert main(argv) == 0
    model = SFMNet(keep_unused_attention=not drop_unused_attention)
    load_like_basicsr(model, str(target))
    assert torch.equal(model.interactions['0'].spatial_conv.weight, official_sd['conv_fuse.0.fre.weight'])


def test_cli_reports_a_wrong_checkpoint_clearly(tmp_path, official_sd, capsys):
    source = tmp_path / 'official.pth'
    torch.save({key: tensor for key, tensor in official_sd.items() if key != 'head.0.act.weight'}, source)
    assert main([str(source), str(tmp_path / 'converted.pth')]) == 1
    assert 'missing keys (1): head.0.act.weight' in capsys.readouterr().err
    assert not (tmp_path / 'converted.pth').exists()


@pytest.mark.parametrize('network, plugin_class', [('D', SFMNetSpatialDiscriminator),
                                                   ('DF', SFMNetFrequencyDiscriminator)])
def test_official_discriminators_convert(tmp_path, network, plugin_class):
    official = random_official_state_dict(network)
    discriminator = plugin_class()
    discriminator.load_state_dict(convert_official_discriminator_state_dict(official), strict=True)
    assert torch.equal(discriminator.features[0].conv.weight, official['features.0.filter.weight'])
    assert torch.equal(discriminator.features[4].conv1x1.conv.bias, official['features.4.conv_a.filter.bias'])
    assert torch.equal(discriminator.features[7].conv3x3.conv.weight, official['features.7.conv.filter.weight'])
    assert torch.equal(discriminator.classifier[0].linear.weight, official['classifier.0.filter.weight'])
    assert torch.equal(discriminator.classifier[2].bias, official['classifier.2.bias'])
    # the command line recognises discriminator checkpoints by their keys
    source, target = tmp_path / 'official_d.pth', tmp_path / 'd.pth'
    torch.save(official, source)
    assert main([str(source), str(target)]) == 0
    load_like_basicsr(plugin_class(), str(target))


# ------------------------------------------------------------------ files the converter refuses


def official_discriminator_file(tmp_path):
    path = tmp_path / 'official_d.pth'
    torch.save(random_official_state_dict('D'), path)
    return path


@pytest.mark.parametrize('kind', ['missing', 'empty', 'random bytes', 'pickle with code', 'not a state dict',
                                  'NaN weights'])
def test_convert_official_bad_checkpoints_are_one_line(tmp_path, capsys, kind, malicious_torch_file):
    source = tmp_path / 'in.pth'
    if kind == 'empty':
        source.write_bytes(b'')
    elif kind == 'random bytes':
        source.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif kind == 'pickle with code':
        malicious_torch_file(source, tmp_path / 'MARKER', payload_key='params')
    elif kind == 'not a state dict':
        torch.save({'params': [1, 2, 3]}, source)
    elif kind == 'NaN weights':  # refused as it is loaded, before any conversion
        torch.save({'conv_first.weight': torch.ones(4, 3, 3, 3), 'conv_first.bias': torch.tensor([0., float('nan')])},
                   source)
    assert main([str(source), str(tmp_path / 'out.pth')]) == 1
    err = capsys.readouterr().err.strip()
    if kind == 'NaN weights':
        assert 'tensor conv_first.bias is not finite' in err
    assert err.splitlines() == [err] and str(source) in err and 'Traceback' not in err
    assert not (tmp_path / 'MARKER').exists() and not (tmp_path / 'out.pth').exists()


@pytest.mark.parametrize('kind', ['missing folder', 'a folder'])
def test_convert_official_unwritable_outputs_are_one_line(tmp_path, capsys, kind):
    output = tmp_path / 'no_such_folder' / 'out.pth'
    if kind == 'a folder':
        output = tmp_path / 'existing_folder'
        output.mkdir()
    assert main([str(official_discriminator_file(tmp_path)), str(output)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and str(output) in err and 'Traceback' not in err
    assert ('already exists' if kind == 'a folder' else f'cannot write {output}') in err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith('.partial')) == []
