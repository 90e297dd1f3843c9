"""``sfmnet-infer`` and ``sfmnet-export`` never write over their inputs or through links, sfmnet-infer decodes 16-bit
PNGs like the preparation scripts, and output problems are one line."""
import json

import numpy as np
import pytest
import torch
from basicsr.archs import build_network
from PIL import Image

from sfmnet_cli.infer import main
from sfmnet_plugin.data.image_io import read_photo, read_rgb_image

TINY = {'type': 'SFMNet', 'upscale': 4, 'num_feat': 8, 'num_heads': 2, 'num_levels': 2}


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / 'tiny.pth'
    torch.save({'params': build_network(dict(TINY)).state_dict()}, path)
    return str(path)


def run(inputs, output, checkpoint, *extra):
    return main([*map(str, inputs), '--output', str(output), '--checkpoint', checkpoint, '--arch-json',
                 json.dumps(TINY), *extra])


def lr_folder(tmp_path, count=2):
    folder = tmp_path / 'lr'
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / f'{i}.png')
    return folder


def snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_output_equal_to_the_input_folder_is_refused(tmp_path, checkpoint, capsys):
    folder = lr_folder(tmp_path)
    before = snapshot(folder)
    assert run([folder], folder, checkpoint) == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and 'is the input folder' in err
    assert snapshot(folder) == before
    assert run([folder / '0.png'], str(folder) + '/./', checkpoint) == 1  # the same folder, spelt differently
    assert 'holds the input' in capsys.readouterr().err
    assert snapshot(folder) == before


def test_an_output_over_an_input_file_is_refused(tmp_path, checkpoint, capsys):
    folder = lr_folder(tmp_path)
    before = snapshot(folder)
    assert run([folder / '1.png', tmp_path / 'other'], folder, checkpoint) == 1
    assert f'holds the input {folder / "1.png"}' in capsys.readouterr().err
    assert snapshot(folder) == before


def test_output_that_is_a_file_is_one_line(tmp_path, checkpoint, capsys):
    folder = lr_folder(tmp_path)
    (tmp_path / 'out').write_text('x')
    assert run([folder], tmp_path / 'out', checkpoint) == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and 'is a file' in err and 'Traceback' not in err


def test_a_16_bit_png_is_decoded_as_in_preparation_not_saturated(tmp_path, checkpoint):
    folder = tmp_path / 'lr16'
    folder.mkdir()
    grey16 = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000 + 300)  # 300 ... 63300 of 65535
    Image.fromarray(grey16).save(folder / 'deep.png')
    assert Image.open(folder / 'deep.png').mode.startswith('I')
    decoded, mode = read_rgb_image(folder / 'deep.png')
    expected_lr = np.rint(grey16 / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(decoded)[..., 0], expected_lr)
    assert run([folder], tmp_path / 'out', checkpoint, '--side-by-side') == 0
    side_by_side = np.asarray(Image.open(tmp_path / 'out' / 'deep_sbs.png').convert('RGB'))
    bicubic = side_by_side[:, :32]
    # the bicubic half is the decoded LR upsampled: mid-grey on average, not white (255) as a clipping decoder gives
    assert abs(float(bicubic.mean()) - float(expected_lr.mean())) < 3 and bicubic.max() < 255

@pytest.mark.parametrize('value', [float('nan'), float('inf')])
def test_a_checkpoint_with_non_finite_weights_is_refused(tmp_path, checkpoint, capsys, value):
    """A network swallows a NaN and still writes plausible images: the checkpoint is refused, naming the tensor."""
    state = torch.load(checkpoint, weights_only=True)
    name = sorted(state['params'])[3]
    state['params'][name].view(-1)[-1] = value
    torch.save(state, checkpoint)
    folder = lr_folder(tmp_path)
    assert run([folder], tmp_path / 'out', checkpoint) == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and f'tensor params.{name} is not finite' in err and checkpoint in err
    assert not (tmp_path / 'out').exists()

@pytest.mark.parametrize('output_name', ['0.png', '1_sbs.png'])
def test_a_symlink_under_an_output_name_is_refused_never_written_through(tmp_path, checkpoint, capsys, output_name):
    folder = lr_folder(tmp_path)
    victim = tmp_path / 'victim.txt'
    victim.write_text('precious')
    out = tmp_path / 'out'
    out.mkdir()
    (out / output_name).symlink_to(victim)
    assert run([folder], out, checkpoint, '--side-by-side') == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and f'{out / output_name} is a symbolic link' in err
    assert victim.read_text() == 'precious' and sorted(p.name for p in out.iterdir()) == [output_name]


@pytest.mark.parametrize('clash', ['--checkpoint', '--opt'])
def test_export_never_writes_over_its_checkpoint_or_option_file(tmp_path, checkpoint, capsys, clash):
    from sfmnet_cli.export import main as export

    options = tmp_path / 'net.yml'
    options.write_text('network_g: {type: SFMNet, upscale: 4, num_feat: 8, num_heads: 2, num_levels: 2}\n')
    target = checkpoint if clash == '--checkpoint' else str(options)
    before = {path: open(path, 'rb').read() for path in (checkpoint, str(options))}
    assert export(['--checkpoint', checkpoint, '--opt', str(options), '--lr-size', '8', '--overwrite',
                   '--output', target.replace('/tiny.pth', '/./tiny.pth')]) == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and f'is the {clash} {target}' in err
    assert {path: open(path, 'rb').read() for path in before} == before

def test_the_one_decoder_composites_alpha_and_turns_photos_upright_only_when_asked(tmp_path):
    """sfmnet-restore and sfmnet-infer share read_rgb_image: transparent pixels are white (not their stored black),
    and upright=True (photos) applies the EXIF orientation that the datasets' annotations do not."""
    rgba = np.zeros((4, 6, 4), np.uint8)  # transparent black, 6 wide and 4 high
    rgba[0, 0] = (10, 20, 30, 255)
    image = Image.fromarray(rgba, 'RGBA')
    exif = image.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to view
    image.save(tmp_path / 'photo.png', exif=exif)
    stored, mode = read_rgb_image(tmp_path / 'photo.png')
    upright = read_photo(tmp_path / 'photo.png')  # what sfmnet-restore and the README's example use
    assert mode == 'RGBA' and stored.size == (6, 4) and upright.size == (4, 6)
    stored = np.asarray(stored)
    assert tuple(stored[0, 0]) == (10, 20, 30) and (stored[1:] == 255).all()
    assert tuple(np.asarray(upright)[0, -1]) == (10, 20, 30)  # the top-left pixel turned to the top-right
