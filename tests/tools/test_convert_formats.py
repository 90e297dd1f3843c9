"""sfmnet-convert: the plugin's own checkpoints between .pth and .safetensors, weights and options unchanged."""
import subprocess
import sys

import torch
from basicsr.archs import build_network

from sfmnet_cli.convert import main
from sfmnet_plugin.checkpoints.io import is_safetensors_file, load_checkpoint_file, save_checkpoint_file

NETWORK = {'type': 'SFMNet', 'upscale': 4, 'num_feat': 8, 'num_heads': 2, 'num_levels': 2,
           'keep_unused_attention': False}


def trained_checkpoint(path):
    torch.manual_seed(0)
    params = build_network(dict(NETWORK)).state_dict()
    ema = {key: tensor + 1 for key, tensor in params.items()}
    save_checkpoint_file({'params': params, 'params_ema': ema}, str(path), {'network_g': NETWORK})
    return params, ema


def assert_same(path, params, ema):
    loaded = load_checkpoint_file(str(path))
    assert loaded['network_g'] == NETWORK
    for key in params:
        assert torch.equal(loaded['params'][key], params[key]) and torch.equal(loaded['params_ema'][key], ema[key])


def test_pth_to_safetensors_and_back(tmp_path, capsys):
    params, ema = trained_checkpoint(tmp_path / 'net_g_10.pth')
    assert main([str(tmp_path / 'net_g_10.pth'), str(tmp_path / 'net_g_10.safetensors')]) == 0
    assert 'params, params_ema' in capsys.readouterr().out
    assert is_safetensors_file(str(tmp_path / 'net_g_10.safetensors'))
    assert_same(tmp_path / 'net_g_10.safetensors', params, ema)
    assert main([str(tmp_path / 'net_g_10.safetensors'), str(tmp_path / 'back.bin'), '--format', 'pth']) == 0
    assert not is_safetensors_file(str(tmp_path / 'back.bin'))
    assert_same(tmp_path / 'back.bin', params, ema)


def test_refuses_to_overwrite_and_points_official_checkpoints_to_their_converter(tmp_path, capsys):
    trained_checkpoint(tmp_path / 'a.pth')
    assert main([str(tmp_path / 'a.pth'), str(tmp_path / 'a.pth')]) == 1
    assert 'already exists' in capsys.readouterr().err
    official = {key: torch.zeros(1) for key in ('head_fre.0.layers.weight', 'head.0.layers.weight')}
    torch.save(official, tmp_path / 'official.pth')
    assert main([str(tmp_path / 'official.pth'), str(tmp_path / 'out.pth')]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith('sfmnet-convert: ') and '\n' not in err


def test_help_runs_as_a_module():
    result = subprocess.run([sys.executable, '-m', 'sfmnet_cli.convert', '--help'], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0 and 'sfmnet-convert IN OUT' in result.stdout
