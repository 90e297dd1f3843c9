"""Official SISN checkpoints (the solver's ``<step>.pt``: a DataParallel state dict, every key ``module.``-prefixed):
recognised, checked, converted and loaded, on state dicts built from the official key listing
(``tests/data/sisn_official_keys.txt``)."""
import os

import pytest
import torch
from basicsr.archs import build_network
from basicsr.models.base_model import BaseModel

from sfmnet_cli.convert_official import main as convert_main
from sfmnet_plugin.archs.sisn_arch import SISN
from sfmnet_plugin.checkpoints import CheckpointConversionError, convert_official_checkpoint

KEYS = os.path.join('tests', 'data', 'sisn_official_keys.txt')


def official_checkpoint(layout, device='cpu'):
    """The official solver's checkpoint layout (``module.`` prefixes) filled with distinct random values."""
    generator = torch.Generator().manual_seed(0)
    return {f'module.{key}': (torch.empty(shape, dtype=dtype, device='meta') if device == 'meta'
                              else torch.rand(shape, generator=generator).to(dtype))
            for key, (shape, dtype) in layout.items()}


@pytest.mark.parametrize('scale, prefixed', [(4, True), (8, True), (4, False)])
def test_official_checkpoints_are_recognised_checked_and_load_strictly(official_key_listing, scale, prefixed):
    checkpoint = official_checkpoint(official_key_listing(KEYS, f'SISN x{scale} '), device='meta')
    if not prefixed:
        checkpoint = {key[len('module.'):]: t for key, t in checkpoint.items()}
    converted, found = convert_official_checkpoint(checkpoint)
    assert found.name == f'SISN x{scale}' and found.network_options == {'type': 'SISN', 'upscale': scale}
    assert all(not key.startswith('module.') for key in converted) and len(converted) == len(checkpoint)
    with torch.device('meta'):
        network = build_network(dict(found.network_options))
    network.load_state_dict(converted, strict=True, assign=True)


def test_other_sizes_are_read_off_the_shapes():
    with torch.device('meta'):
        state_dict = SISN(upscale=8, num_groups=2, num_blocks=3, num_feat=16).state_dict()
    converted, found = convert_official_checkpoint({f'module.{k}': t for k, t in state_dict.items()})
    assert found.name == 'SISN x8 (num_groups=2, num_blocks=3, num_feat=16)'
    assert found.network_options == {'type': 'SISN', 'upscale': 8, 'num_groups': 2, 'num_blocks': 3, 'num_feat': 16}
    assert list(converted) == list(state_dict)


def test_a_wrong_checkpoint_names_the_first_mismatched_key(official_key_listing):
    checkpoint = official_checkpoint(official_key_listing(KEYS, 'SISN x4 '), device='meta')
    del checkpoint['module.body.3.body.7.skip.weight']
    checkpoint['module.body.5.IA.conv2.conv.weight'] = torch.empty(256, 64, 3, 3, device='meta')
    with pytest.raises(CheckpointConversionError) as error:
        convert_official_checkpoint(checkpoint)
    assert str(error.value).startswith("Not an official SISN x4 state dict: first mismatch: missing key "
                                       "'body.3.body.7.skip.weight'.")
    assert 'body.5.IA.conv2.conv.weight (256, 64, 3, 3) (expected (256, 16, 3, 3))' in str(error.value)
    checkpoint = official_checkpoint(official_key_listing(KEYS, 'SISN x4 '), device='meta')
    checkpoint['module.head.1.weight'] = torch.empty(64, 50, 3, 3, device='meta')
    with pytest.raises(CheckpointConversionError, match='head.1.weight takes 50 input channels'):
        convert_official_checkpoint(checkpoint)


def test_cli_converts_and_basicsr_loads_it(tmp_path, official_key_listing, capsys):
    checkpoint = official_checkpoint(official_key_listing(KEYS, 'SISN x4 '))
    source, target = tmp_path / '300000.pt', tmp_path / 'sisn_x4.pth'
    torch.save(checkpoint, source)
    assert convert_main([str(source), str(target)]) == 0
    assert capsys.readouterr().out.startswith('Found: SISN x4. ')
    model = SISN()
    BaseModel({'num_gpu': 0, 'is_train': False}).load_network(model, str(target), strict=True, param_key='params')
    assert torch.equal(model.body[9].IA.conv2.conv1x1_2.bias, checkpoint['module.body.9.IA.conv2.conv1x1_2.bias'])


def test_face_restorer_and_sfmnet_infer_take_the_raw_official_checkpoint(tmp_path, check_restores_like):
    torch.manual_seed(0)
    model = SISN(upscale=8)
    raw = tmp_path / 'SISN_official.pth'
    torch.save({f'module.{key}': t for key, t in model.state_dict().items()}, raw)
    # no network options: the checkpoint names SISN x8; sfmnet-infer takes the raw file the same way
    check_restores_like(model, raw, 'SISN x8', infer_with=[(raw, [])])
