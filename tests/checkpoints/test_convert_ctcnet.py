"""Official CTCNet checkpoints: recognised, checked, converted and loaded, on state dicts built from the official key
listing (``tests/data/ctcnet_official_keys.txt``)."""
import os

import pytest
import torch
from basicsr.archs import build_network
from basicsr.models.base_model import BaseModel

from sfmnet_cli.convert_official import main as convert_main
from sfmnet_plugin.archs.ctcnet_arch import CTCNet
from sfmnet_plugin.checkpoints import CheckpointConversionError, convert_official_checkpoint

KEYS = os.path.join('tests', 'data', 'ctcnet_official_keys.txt')


@pytest.fixture(scope='module')
def official_sd(official_key_listing):
    """The official layout filled with distinct random values, so a misplaced tensor would show."""
    generator = torch.Generator().manual_seed(0)
    return {key: torch.rand(shape, generator=generator).to(dtype) if dtype.is_floating_point
            else torch.zeros(shape, dtype=dtype) for key, (shape, dtype) in official_key_listing(KEYS).items()}


@pytest.fixture(scope='module')
def network():
    return CTCNet()


@pytest.mark.parametrize('prefix', ['', 'module.'])
def test_official_checkpoint_is_recognised_checked_and_loads_strictly(official_sd, network, prefix):
    converted, found = convert_official_checkpoint({f'{prefix}{key}': t for key, t in official_sd.items()})
    assert found.name == 'CTCNet' and found.network_options == {'type': 'CTCNet', 'upscale': 8}
    assert list(converted) == list(official_sd) and all(converted[k] is official_sd[k] for k in official_sd)
    network.load_state_dict(converted, strict=True)
    assert torch.equal(network.res_layers[2].att_func2.b3_2.relu.func.weight,
                       official_sd['res_layers.2.att_func2.b3_2.relu.func.weight'])
    assert torch.equal(network.res_layers_back.encoder_level1[3].ffn.project_out.weight,
                       official_sd['res_layers_back.encoder_level1.3.ffn.project_out.weight'])
    assert torch.equal(network.res_layers[0].STL128.mlp.fc2.bias, official_sd['res_layers.0.STL128.mlp.fc2.bias'])


def test_build_network_makes_the_official_network():
    with torch.device('meta'):
        built = build_network({'type': 'CTCNet', 'upscale': 8})
    assert isinstance(built, CTCNet) and sum(p.numel() for p in built.parameters()) == 24_404_917


def test_a_wrong_checkpoint_names_the_first_mismatched_key(official_sd):
    broken = dict(official_sd, **{'tail288_64.weight': torch.zeros(64, 256, 3, 3)})
    del broken['res_layers_up2.encoder_level1.5.attn.temperature']
    with pytest.raises(CheckpointConversionError) as error:
        convert_official_checkpoint(broken)
    # the first mismatch in the official order: res_layers_up2 comes before tail288_64
    assert str(error.value).startswith("Not an official CTCNet state dict: first mismatch: missing key "
                                       "'res_layers_up2.encoder_level1.5.attn.temperature'.")
    assert 'shape mismatches (1): tail288_64.weight (64, 256, 3, 3) (expected (64, 288, 3, 3))' in str(error.value)
    without_unused = {key: t for key, t in official_sd.items() if not key.startswith('embed.')}
    with pytest.raises(CheckpointConversionError, match="first mismatch: missing key 'embed.weight'"):
        convert_official_checkpoint(without_unused)


def test_cli_converts_and_basicsr_loads_it(tmp_path, official_sd, network, capsys):
    source, target = tmp_path / 'CTCNet_official.pth', tmp_path / 'ctcnet.pth'
    torch.save({f'module.{key}': t for key, t in official_sd.items()}, source)
    assert convert_main([str(source), str(target)]) == 0
    assert capsys.readouterr().out.startswith('Found: CTCNet. ')
    BaseModel({'num_gpu': 0, 'is_train': False}).load_network(network, str(target), strict=True, param_key='params')
    assert torch.equal(network.tai256_32.weight, official_sd['tai256_32.weight'])


def test_face_restorer_takes_the_raw_official_checkpoint(tmp_path, check_restores_like):
    torch.manual_seed(0)
    model = CTCNet()
    raw = tmp_path / 'CTCNet_official.pth'
    torch.save(model.state_dict(), raw)  # as the official save_networks writes it: no prefix
    check_restores_like(model, raw, 'CTCNet')  # no network options: the checkpoint names CTCNet x8


def test_a_narrower_plugin_ctcnet_is_recognised_with_its_width():
    torch.manual_seed(0)
    narrow = CTCNet(num_feat=8)
    converted, found = convert_official_checkpoint({f'module.{k}': t for k, t in narrow.state_dict().items()})
    assert found.name == 'CTCNet (num_feat=8)'
    assert found.network_options == {'type': 'CTCNet', 'upscale': 8, 'num_feat': 8}
    build_network(dict(found.network_options)).load_state_dict(converted, strict=True)
