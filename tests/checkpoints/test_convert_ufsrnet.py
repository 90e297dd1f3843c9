"""Official UFSRNet checkpoints (``latest_net_G.pth``): recognised, checked, converted and loaded, on state dicts built
from the official key listing (``tests/data/ufsrnet_official_keys.txt``)."""
import os

import pytest
import torch
from basicsr.archs import build_network
from basicsr.models.base_model import BaseModel

from sfmnet_cli.convert_official import main as convert_main
from sfmnet_plugin.archs.ufsrnet_arch import UFSRNet
from sfmnet_plugin.checkpoints import CheckpointConversionError, convert_official_checkpoint

KEYS = os.path.join('tests', 'data', 'ufsrnet_official_keys.txt')


@pytest.fixture(scope='module')
def official_sd(official_key_listing):
    """The official layout filled with distinct random values, so a misplaced tensor would show."""
    generator = torch.Generator().manual_seed(0)
    return {key: torch.rand(shape, generator=generator, dtype=dtype)
            for key, (shape, dtype) in official_key_listing(KEYS).items()}


@pytest.mark.parametrize('prefix', ['', 'module.'])
def test_official_checkpoint_is_recognised_checked_and_loads_strictly(official_sd, prefix):
    converted, found = convert_official_checkpoint({f'{prefix}{key}': t for key, t in official_sd.items()})
    assert found.name == 'UFSRNet' and found.network_options == {'type': 'UFSRNet', 'upscale': 8}
    assert list(converted) == list(official_sd) and all(converted[k] is official_sd[k] for k in official_sd)
    network = build_network(dict(found.network_options))
    network.load_state_dict(converted, strict=True)
    assert torch.equal(network.i_l2_Block2.c3_r.weight, official_sd['i_l2_Block2.c3_r.weight'])
    assert torch.equal(network.i_l0_Block1.norm2.bias, official_sd['i_l0_Block1.norm2.bias'])


def test_a_wrong_checkpoint_names_the_first_mismatched_key(official_sd):
    broken = dict(official_sd, **{'d_l1.weight': torch.zeros(128, 128, 1, 1)})
    del broken['i_l1_Block1.sca.1.bias']
    with pytest.raises(CheckpointConversionError) as error:
        convert_official_checkpoint(broken)
    assert str(error.value).startswith("Not an official UFSRNet state dict: first mismatch: key 'd_l1.weight' has "
                                       "shape (128, 128, 1, 1), expected (128, 256, 1, 1).")
    assert 'missing keys (1): i_l1_Block1.sca.1.bias' in str(error.value)
    without_unused = {key: t for key, t in official_sd.items() if not key.endswith('conv0.weight')}
    with pytest.raises(CheckpointConversionError, match="first mismatch: missing key 'i_l2_Block2.conv0.weight'"):
        convert_official_checkpoint(without_unused)


def test_cli_converts_and_basicsr_loads_it(tmp_path, official_sd, capsys):
    source, target = tmp_path / 'latest_net_G.pth', tmp_path / 'ufsrnet.pth'
    torch.save({f'module.{key}': t for key, t in official_sd.items()}, source)
    assert convert_main([str(source), str(target)]) == 0
    assert capsys.readouterr().out.startswith('Found: UFSRNet. ')
    model = UFSRNet()
    BaseModel({'num_gpu': 0, 'is_train': False}).load_network(model, str(target), strict=True, param_key='params')
    assert torch.equal(model.tail1.weight, official_sd['tail1.weight'])


def test_face_restorer_and_sfmnet_infer_take_the_raw_official_checkpoint(tmp_path, check_restores_like):
    torch.manual_seed(0)
    model = UFSRNet()
    raw = tmp_path / 'UFSRNet_official.pth'
    torch.save({f'module.{key}': t for key, t in model.state_dict().items()}, raw)
    # no network options: the checkpoint names UFSRNet x8; sfmnet-infer takes the raw file the same way
    check_restores_like(model, raw, 'UFSRNet', infer_with=[(raw, [])])


def test_a_plugin_trained_ufsrnet_of_another_width_round_trips():
    with torch.device('meta'):
        state_dict = UFSRNet(num_feat=8).state_dict()
    converted, found = convert_official_checkpoint(state_dict)
    assert found.name == 'UFSRNet (num_feat=8)'
    assert found.network_options == {'type': 'UFSRNet', 'upscale': 8, 'num_feat': 8}
    with torch.device('meta'):
        build_network(dict(found.network_options)).load_state_dict(converted, strict=True, assign=True)
