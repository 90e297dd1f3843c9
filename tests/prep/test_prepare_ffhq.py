"""FFHQ preparation: 1024x1024 PNGs in FFHQ's layout -> per-split HR LMDBs (PIL bicubic), atomic and resumable."""
import json

import numpy as np
import pytest
from PIL import Image

from sfmnet_cli.prepare_ffhq import main as cli
from sfmnet_plugin.data.degraded_face_dataset import DegradedFaceDataset
from sfmnet_plugin.prep.output_folders import OWNER_MARKER

SIZE = 64


@pytest.fixture(scope='module')
def ffhq(tmp_path_factory, smooth_noise):
    """A miniature FFHQ: three training and one validation image in numbered folders, plus two bad files."""
    root = tmp_path_factory.mktemp('ffhq')
    images = {}
    for number in (0, 1, 1001, 60000):
        folder = root / 'images1024x1024' / f'{number // 1000 * 1000:05d}'
        folder.mkdir(parents=True, exist_ok=True)
        images[f'{number:05d}'] = smooth_noise(1024, 1024, seed=number)
        Image.fromarray(images[f'{number:05d}']).save(folder / f'{number:05d}.png', compress_level=1)
    Image.fromarray(smooth_noise(1024, 900, seed=9)).save(root / 'images1024x1024' / '01000' / '01002.png')
    (root / 'images1024x1024' / '00000' / '00002.png').write_bytes(b'not a png')
    return root, images


def expected_hr(rgb, size=SIZE):
    return np.array(Image.fromarray(rgb).resize((size, size), Image.BICUBIC))


def test_splits_hold_pil_bicubic_resized_images_and_bad_files_are_reported(ffhq, tmp_path, read_lines,
                                                                           read_lmdb_images):
    root, images = ffhq
    out = tmp_path / 'FFHQ'
    assert cli(['--root', str(root), '--out', str(out), '--hr-size', str(SIZE), '--workers', '2']) == 0
    train, val = read_lmdb_images(out / 'train' / 'HR.lmdb'), read_lmdb_images(out / 'val' / 'HR.lmdb')
    assert sorted(train) == ['00000', '00001', '01001'] and sorted(val) == ['60000']
    for key, array in {**train, **val}.items():
        assert np.array_equal(array, expected_hr(images[key])), key
    assert read_lines(out / 'train' / 'HR.lmdb' / 'meta_info.txt')[0] == f'00000.png ({SIZE},{SIZE},3) 1'
    report = (out / 'train' / 'prepare_report.txt').read_text()
    assert '01002.png: skipped, not square' in report and '00002.png: skipped, unreadable' in report
    assert not list(out.glob('*.partial'))

    # The dataset SPARNetHD trains on reads it as it is.
    dataset = DegradedFaceDataset({'name': 'ffhq', 'dataroot_gt': str(out / 'train' / 'HR.lmdb'), 'scale': 1,
                                   'phase': 'train', 'degradation_seed': 0,
                                   'degradation': {'down_size_range': [8, 31], 'gaussian_sigma_range': [0.5, 2]}})
    assert len(dataset) == 3 and dataset[0]['lq'].shape == (3, SIZE, SIZE)


def test_existing_splits_are_kept_leftovers_removed_and_metadata_splits(ffhq, tmp_path, capsys, read_lmdb_images):
    root, _ = ffhq
    out = tmp_path / 'FFHQ'
    (out / 'val.partial' / 'HR.lmdb').mkdir(parents=True)  # as a killed run leaves it (marked as the tool's)
    (out / 'val.partial' / OWNER_MARKER).touch()
    metadata = tmp_path / 'ffhq-dataset-v2.json'
    # The metadata, not the number, decides: here 01001 is "validation".
    metadata.write_text(json.dumps({str(n): {'category': 'validation' if n in (1001, 60000) else 'training'}
                                    for n in (0, 1, 2, 1001, 1002, 60000)}))
    args = ['--root', str(root / 'images1024x1024'), '--out', str(out), '--hr-size', str(SIZE), '--workers', '1',
            '--metadata', str(metadata)]
    assert cli(args) == 0
    assert sorted(read_lmdb_images(out / 'val' / 'HR.lmdb')) == ['01001', '60000']
    assert 'Removing' in capsys.readouterr().out and not (out / 'val.partial').exists()
    assert cli(args) == 0  # a second run keeps both splits
    assert capsys.readouterr().out.count('already exists: skipped') == 2


def test_script_errors_are_one_line(ffhq, tmp_path, capsys, run_script):
    root, _ = ffhq
    result = run_script('prepare_ffhq', '--root', tmp_path / 'missing', '--out', tmp_path / 'out')
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert result.stderr.startswith('sfmnet-prepare-ffhq: error: ')
    assert cli(['--root', str(root), '--out', str(tmp_path / 'out'), '--splits', 'all', 'train']) == 2
    assert 'do not combine' in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()
