"""``sfmnet-infer``: tiny networks (SFMNet and BasicSR's SRVGGNetCompact) on a handful of LR images, in-process
(plus one ``--help`` subprocess)."""
import json
import subprocess

import numpy as np
import pytest
import torch
from basicsr.archs import build_network
from basicsr.utils import tensor2img
from PIL import Image

from sfmnet_cli.infer import main
from sfmnet_plugin.checkpoints.sfmnet import official_to_plugin_key_map
from sfmnet_plugin.data.image_io import read_rgb_image

# num_levels 3: the HR size must be a multiple of 8, so a 7x5 input (28x20 at x4) is refused.
TINY = {'type': 'SFMNet', 'upscale': 4, 'num_feat': 8, 'num_heads': 2, 'num_levels': 3}
COMPACT = {'type': 'SRVGGNetCompact', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_conv': 2, 'upscale': 4}


def tiny_network(**overrides):
    torch.manual_seed(0)
    return build_network({**TINY, **overrides}).eval()


def expected_sr(network, lr_image):
    """What the CLI should write: the network run directly, clamped and rounded by tensor2img (RGB uint8)."""
    lr = torch.from_numpy(np.asarray(lr_image.convert('RGB'), dtype=np.float32) / 255.).permute(2, 0, 1)[None]
    with torch.no_grad():
        return tensor2img(network(lr)[0], rgb2bgr=False, min_max=(0, 1))


def read_rgb(path):
    return np.asarray(Image.open(path).convert('RGB'))


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """A BasicSR checkpoint of the tiny network and a folder of good and bad LR images."""
    root = tmp_path_factory.mktemp('infer')
    network = tiny_network()
    checkpoint = root / 'tiny.pth'
    torch.save({'params': network.state_dict(), 'params_ema': network.state_dict()}, checkpoint)

    rng = np.random.default_rng(0)
    images = root / 'lr'
    images.mkdir()
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(images / 'rgb.png')
    Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8), 'L').save(images / 'gray.png')
    Image.fromarray(rng.integers(0, 256, (8, 8, 4), dtype=np.uint8), 'RGBA').save(images / 'rgba.png')
    Image.fromarray(rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)).save(images / 'odd.png')  # 7x5 (WxH)
    Image.fromarray(rng.integers(0, 256, (300, 260, 3), dtype=np.uint8)).save(images / 'photo.jpg')  # not an LR face
    (images / 'garbage.png').write_bytes(b'not an image at all')
    (images / 'truncated.png').write_bytes((images / 'rgb.png').read_bytes()[:60])
    (images / 'notes.txt').write_text('ignored: not an image extension')
    return {'root': root, 'network': network, 'checkpoint': checkpoint, 'images': images}


def infer(setup, out, *extra, inputs=None):
    argv = [*(inputs or [str(setup['images'])]), '--output', str(out), '--checkpoint', str(setup['checkpoint']),
            '--arch-json', json.dumps(TINY), *extra]
    return main(argv)


def test_good_images_are_super_resolved_and_bad_ones_reported(setup, tmp_path, capsys):
    assert infer(setup, tmp_path, '--batch-size', '2') == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ['gray.png', 'rgb.png', 'rgba.png']
    for name in ('rgb', 'gray', 'rgba'):
        written = read_rgb(tmp_path / f'{name}.png')
        assert written.shape == (32, 32, 3)
        lr, _ = read_rgb_image(setup['images'] / f'{name}.png')  # the preparation scripts' decoder
        np.testing.assert_array_equal(written, expected_sr(setup['network'], lr))

    err = capsys.readouterr().err
    assert '4 input(s) skipped' in err
    assert 'garbage.png: unreadable image' in err
    assert 'truncated.png: unreadable image' in err
    assert "odd.png: wrong size: network_g type 'SFMNet' cannot take a 7x5 input" in err
    assert 'divisible by 8' in err and 'use --size 32 for 128-px faces' in err
    assert 'photo.jpg: wrong size: 260x300 is larger than an LR face (--max-input-side 128)' in err


def test_strict_fails_on_any_bad_file_and_no_success_fails(setup, tmp_path):
    assert infer(setup, tmp_path / 'strict', '--strict') == 1
    assert (tmp_path / 'strict' / 'rgb.png').is_file()  # the good images are still written
    only_bad = [str(setup['images'] / 'garbage.png'), str(setup['images'] / 'odd.png')]
    assert infer(setup, tmp_path / 'bad', inputs=only_bad) == 1


def test_size_resizes_odd_images_with_pil_bicubic(setup, tmp_path):
    odd = setup['images'] / 'odd.png'
    assert infer(setup, tmp_path, '--size', '8', inputs=[str(odd)]) == 0
    resized = Image.open(odd).resize((8, 8), Image.BICUBIC)
    np.testing.assert_array_equal(read_rgb(tmp_path / 'odd.png'), expected_sr(setup['network'], resized))


def test_side_by_side_is_bicubic_then_sr(setup, tmp_path):
    rgb = setup['images'] / 'rgb.png'
    assert infer(setup, tmp_path, '--side-by-side', inputs=[str(rgb)]) == 0
    sbs = read_rgb(tmp_path / 'rgb_sbs.png')
    assert sbs.shape == (32, 64, 3)
    np.testing.assert_array_equal(sbs[:, :32], np.asarray(Image.open(rgb).resize((32, 32), Image.BICUBIC)))
    np.testing.assert_array_equal(sbs[:, 32:], read_rgb(tmp_path / 'rgb.png'))


def test_param_key_chooses_the_state_dict(setup, tmp_path):
    other = tiny_network()
    torch.nn.init.zeros_(other.spatial_branch.tail.conv.weight)  # SR = bicubic-upsampled input
    checkpoint = tmp_path / 'two.pth'
    torch.save({'params': other.state_dict(), 'params_ema': setup['network'].state_dict()}, checkpoint)
    rgb = setup['images'] / 'rgb.png'
    base = [str(rgb), '--checkpoint', str(checkpoint), '--arch-json', json.dumps(TINY)]
    assert main([*base, '--output', str(tmp_path / 'ema')]) == 0
    assert main([*base, '--output', str(tmp_path / 'params'), '--param-key', 'params']) == 0
    lr = Image.open(rgb)
    np.testing.assert_array_equal(read_rgb(tmp_path / 'ema' / 'rgb.png'), expected_sr(setup['network'], lr))
    np.testing.assert_array_equal(read_rgb(tmp_path / 'params' / 'rgb.png'), expected_sr(other, lr))


def test_mismatched_checkpoint_names_the_file_and_the_option(setup, tmp_path, capsys):
    wide = tmp_path / 'wide16.pth'
    torch.save({'params': tiny_network(num_feat=16).state_dict()}, wide)
    assert main([str(setup['images'] / 'rgb.png'), '--output', str(tmp_path / 'out'), '--checkpoint', str(wide),
                 '--arch-json', json.dumps(TINY)]) == 1
    err = capsys.readouterr().err
    assert f'checkpoint {wide} does not fit' in err
    assert 'the checkpoint has num_feat 16 but the network has 8' in err
    assert 'more)' in err and len(err.splitlines()) < 12  # a few keys, not hundreds


def test_missing_checkpoint_is_a_clear_error(setup, tmp_path, capsys):
    assert main([str(setup['images']), '--output', str(tmp_path), '--checkpoint', str(tmp_path / 'nope.pth')]) == 1
    assert f'checkpoint not found: {tmp_path / "nope.pth"}' in capsys.readouterr().err


@pytest.mark.parametrize('keep_unused_attention', [True, False])
def test_official_state_dict_is_converted_on_the_fly(setup, tmp_path, keep_unused_attention):
    # The converter only knows the official (default-width) network, so use it at upscale 1 on an 8x8 input:
    # the weights do not depend on upscale and the forward pass stays cheap.
    torch.manual_seed(0)
    network = build_network({'type': 'SFMNet', 'upscale': 1}).eval()
    plugin_sd = network.state_dict()
    official = {official: plugin_sd[plugin] for official, plugin in official_to_plugin_key_map().items()}
    checkpoint = tmp_path / 'official.pth'
    torch.save({f'module.{key}': t for key, t in official.items()}, checkpoint)  # DataParallel-style

    arch = {'type': 'SFMNet', 'upscale': 1, 'keep_unused_attention': keep_unused_attention}
    rgb = setup['images'] / 'rgb.png'
    assert main([str(rgb), '--output', str(tmp_path / 'out'), '--checkpoint', str(checkpoint),
                 '--arch-json', json.dumps(arch)]) == 0
    np.testing.assert_array_equal(read_rgb(tmp_path / 'out' / 'rgb.png'), expected_sr(network, Image.open(rgb)))


def test_help_runs_as_a_module(python_executable):
    result = subprocess.run([python_executable, '-m', 'sfmnet_cli.infer', '--help'],
                            capture_output=True, text=True, timeout=60, check=True)
    assert '--side-by-side' in result.stdout and '--checkpoint' in result.stdout


def test_any_basicsr_architecture_works(setup, tmp_path, capsys):
    torch.manual_seed(0)
    network = build_network(dict(COMPACT)).eval()
    checkpoint = tmp_path / 'compact.pth'
    torch.save({'params': network.state_dict()}, checkpoint)  # no params_ema: params is used
    base = ['--checkpoint', str(checkpoint), '--arch-json', json.dumps(COMPACT)]
    odd = setup['images'] / 'odd.png'
    assert main([str(setup['images'] / 'rgb.png'), str(odd), '--output', str(tmp_path / 'out'), '--side-by-side',
                 '--batch-size', '1', *base]) == 0
    np.testing.assert_array_equal(read_rgb(tmp_path / 'out' / 'odd.png'), expected_sr(network, Image.open(odd)))
    sbs = read_rgb(tmp_path / 'out' / 'odd_sbs.png')
    assert sbs.shape == (20, 56, 3)  # [bicubic 28x20 | SR 28x20]: this network takes any size

    # --scale sets the architecture's upscale option: x2 has other tail shapes, so the x4 checkpoint does not fit.
    capsys.readouterr()
    assert main([str(odd), '--output', str(tmp_path / 'x2'), '--scale', '2', *base]) == 1
    err = capsys.readouterr().err
    assert f'checkpoint {checkpoint} does not fit network_g' in err and "'upscale': 2" in err
    assert 'shape mismatches (checkpoint vs network) (2)' in err


def test_network_options_from_an_option_file_with_a_base(setup, tmp_path):
    (tmp_path / 'base.yml').write_text('network_g:\n' + ''.join(f'  {k}: {v}\n' for k, v in TINY.items()))
    (tmp_path / 'child.yml').write_text('_base_: base.yml\nname: child\n')
    rgb = setup['images'] / 'rgb.png'
    assert main([str(rgb), '--output', str(tmp_path / 'out'), '--checkpoint', str(setup['checkpoint']),
                 '--opt', str(tmp_path / 'child.yml')]) == 0
    expected = expected_sr(setup['network'], Image.open(rgb))
    np.testing.assert_array_equal(read_rgb(tmp_path / 'out' / 'rgb.png'), expected)


@pytest.mark.parametrize('arch_json, message', [
    ('{"type": "NoSuchNet"}', "network_g type 'NoSuchNet' is not a registered BasicSR architecture"),
    ('{"type": "SRVGGNetCompact", "bogus": 1}', "cannot build network_g"),
    ('[1, 2]', '--arch-json must be a JSON object'),
    ('{"num_feat": 8}', 'has no type'),
])
def test_bad_network_options_are_clear_errors(setup, tmp_path, capsys, arch_json, message):
    assert main([str(setup['images']), '--output', str(tmp_path), '--checkpoint', str(setup['checkpoint']),
                 '--arch-json', arch_json]) == 1
    assert message in capsys.readouterr().err
