"""Official WFEN checkpoints: recognised, checked and loaded, on state dicts built from the official key listing
(``tests/data/wfen_official_keys.txt``), with and without DataParallel's ``module.`` prefix; the converter tool,
``FaceRestorer`` and ``sfmnet-infer`` on a raw official file."""
import os

import pytest
import torch
from basicsr.archs import build_network
from basicsr.models.base_model import BaseModel

from sfmnet_cli.convert_official import main as convert_main
from sfmnet_plugin.archs.wfen_arch import WFEN
from sfmnet_plugin.archs.wfen_blocks import haar_filters
from sfmnet_plugin.checkpoints import (
    KNOWN_NETWORKS,
    CheckpointConversionError,
    convert_official_checkpoint,
    recognise_official_checkpoint,
)

OFFICIAL_KEYS = os.path.join('tests', 'data', 'wfen_official_keys.txt')


@pytest.fixture(scope='module')
def wfen_sd(official_key_listing):
    """The official layout: random values (distinct, so a misplaced tensor would show), the fixed Haar filters."""
    generator = torch.Generator().manual_seed(0)
    return {key: haar_filters(shape[0] // 4) if key.endswith('haar_weights')
            else torch.randn(shape, generator=generator, dtype=dtype) * 0.05
            for key, (shape, dtype) in official_key_listing(OFFICIAL_KEYS).items()}


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


def test_tool_face_restorer_and_infer_take_the_raw_official_file(tmp_path, wfen_sd, capsys, check_restores_like):
    raw, converted = tmp_path / 'WFEN_official.pth', tmp_path / 'wfen.pth'
    torch.save({f'module.{key}': t for key, t in wfen_sd.items()}, raw)
    assert convert_main([str(raw), str(converted)]) == 0
    out = capsys.readouterr().out
    assert out.startswith('Found: WFEN. ') and '363 tensors, 6,795,879 parameters' in out
    model = WFEN()
    BaseModel({'num_gpu': 0, 'is_train': False}).load_network(model, str(converted), strict=True, param_key='params')
    assert torch.equal(model.out_conv.weight, wfen_sd['out_conv.weight'])
    # no network options: the checkpoint names WFEN x8
    restorer = check_restores_like(model, raw, 'WFEN', infer_with=[(converted, [])])
    assert restorer.options == {'type': 'WFEN', 'upscale': 8}
