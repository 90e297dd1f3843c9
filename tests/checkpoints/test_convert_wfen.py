"""Official WFEN checkpoints: recognised, checked and loaded, on state dicts built from the official key listing
(``tests/data/wfen_official_keys.txt``), with and without DataParallel's ``module.`` prefix; the converter tool,
``FaceRestorer`` and ``sfmnet-infer`` on a raw official file."""
import ast
import os

import numpy as np
import pytest
import torch
from basicsr.archs import build_network
from basicsr.models.base_model import BaseModel
from PIL import Image

from sfmnet_cli.convert_official import main as convert_main
from sfmnet_cli.infer import main as infer_main
from sfmnet_plugin.archs.wfen_arch import WFEN
from sfmnet_plugin.archs.wfen_blocks import haar_filters
from sfmnet_plugin.checkpoints import (
    KNOWN_NETWORKS,
    CheckpointConversionError,
    convert_official_checkpoint,
    recognise_official_checkpoint,
)
from sfmnet_plugin.inference import FaceRestorer

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OFFICIAL_KEYS = os.path.join(REPO_ROOT, 'tests', 'data', 'wfen_official_keys.txt')


def official_state_dict(seed=0):
    """The official layout: random values (distinct, so a misplaced tensor would show), the fixed Haar filters."""
    generator = torch.Generator().manual_seed(seed)
    state_dict = {}
    with open(OFFICIAL_KEYS, encoding='utf-8') as f:
        for line in f:
            if line.strip() and not line.startswith('#'):
                key, shape, dtype = line.rstrip('\n').split('\t')
                shape = ast.literal_eval(shape)
                state_dict[key] = (haar_filters(shape[0] // 4) if key.endswith('haar_weights')
                                   else torch.randn(shape, generator=generator, dtype=getattr(torch, dtype)) * 0.05)
    return state_dict


@pytest.fixture(scope='module')
def wfen_sd():
    return official_state_dict()


@pytest.mark.parametrize('prefix', ['', 'module.'])
def test_official_checkpoint_is_recognised_checked_and_loads_strictly(wfen_sd, prefix):
    assert len(wfen_sd) == 363 and 'WFEN' in KNOWN_NETWORKS
    converted, found = convert_official_checkpoint({prefix + key: t for key, t in wfen_sd.items()})
    assert found.name == 'WFEN' and found.network_options == {'type': 'WFEN', 'upscale': 8}
    assert list(converted) == list(wfen_sd) and all(converted[k] is wfen_sd[k] for k in wfen_sd)
    model = build_network(dict(found.network_options))
    model.load_state_dict(converted, strict=True)
    assert sum(p.numel() for p in model.parameters()) == 6_795_879
    assert torch.equal(model.Transformer[4].modulec_att['att_0'].temperature,
                       wfen_sd['Transformer.4.modulec_att.att_0.temperature'])


def test_other_configurations_round_trip_with_their_options():
    state_dict = WFEN(min_ch=8, res_depth=3).state_dict()
    converted, found = convert_official_checkpoint(state_dict)
    assert found.name == 'WFEN (min_ch=8, res_depth=3)'
    assert found.network_options == {'type': 'WFEN', 'upscale': 8, 'min_ch': 8, 'res_depth': 3}
    build_network(dict(found.network_options)).load_state_dict(converted, strict=True)


def test_wrong_checkpoints_are_refused_naming_the_key(wfen_sd):
    missing = {key: t for key, t in wfen_sd.items() if key != 'TransformerUp2.0.modulec_ffd.ffd0.dwconv.weight'}
    with pytest.raises(CheckpointConversionError,
                       match="first mismatch: missing key 'TransformerUp2.0.modulec_ffd.ffd0.dwconv.weight'"):
        convert_official_checkpoint(missing)
    altered = dict(wfen_sd, **{'HaarFeatureFusion3.InverseHaarWavelet.haar_weights':
                               wfen_sd['HaarFeatureFusion3.InverseHaarWavelet.haar_weights'] / 2})
    with pytest.raises(CheckpointConversionError, match='InverseHaarWavelet.haar_weights.*fixed Haar filters'):
        convert_official_checkpoint(altered)
    assert recognise_official_checkpoint({'first_conv.weight': torch.zeros(40, 3, 3, 3)}) is None


def test_tool_face_restorer_and_infer_take_the_raw_official_file(tmp_path, wfen_sd, capsys):
    raw, converted = tmp_path / 'WFEN_official.pth', tmp_path / 'wfen.pth'
    torch.save({f'module.{key}': t for key, t in wfen_sd.items()}, raw)
    assert convert_main([str(raw), str(converted)]) == 0
    out = capsys.readouterr().out
    assert out.startswith('Found: WFEN. ') and '363 tensors, 6,795,879 parameters' in out
    model = WFEN()
    BaseModel({'num_gpu': 0, 'is_train': False}).load_network(model, str(converted), strict=True, param_key='params')
    assert torch.equal(model.out_conv.weight, wfen_sd['out_conv.weight'])

    lr = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(lr).permute(2, 0, 1)[None].float() / 255)
    expected = (expected.clamp(0, 1) * 255).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()
    restorer = FaceRestorer(str(raw), device='cpu')  # no network options: the checkpoint names WFEN x8
    assert restorer.official_network.name == 'WFEN' and restorer.options == {'type': 'WFEN', 'upscale': 8}
    np.testing.assert_array_equal(restorer.restore_image(lr), expected)

    Image.fromarray(lr).save(tmp_path / 'face.png')
    assert infer_main([str(tmp_path / 'face.png'), '--output', str(tmp_path / 'out'), '--checkpoint', str(converted),
                       '--device', 'cpu']) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / 'out' / 'face.png')), expected)
