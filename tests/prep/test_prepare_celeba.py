"""datasets_prep/prepare_celeba.py on a miniature CelebA release in the official formats."""
import os
import shutil
import signal
import subprocess
import sys
import time
from os import path as osp

import numpy as np
import pytest
from PIL import Image

from sfmnet_cli.prepare_celeba import main as prepare_celeba
from sfmnet_plugin.prep.celeba import DEFAULT_MARGIN
from sfmnet_plugin.prep.face_crop import (
    SkipImage,
    SquareCrop,
    SquareRegion,
    crop_square,
    square_from_bbox,
    square_from_five_points,
)
from sfmnet_plugin.prep.output_folders import OWNER_MARKER

SCALES = (4, 8, 16)
SFMNET_FOLDERS = {'HR': 'HR', 'LR_x4': 'LR_x4_bicubic', 'LR_x8': 'LR_bicubic', 'LR_x16': 'LR_x16_bicubic'}


@pytest.fixture(scope='module')
def celeba(tmp_path_factory, make_celeba_release):
    return make_celeba_release(str(tmp_path_factory.mktemp('release') / 'CelebA'))


@pytest.fixture(scope='module')
def wild_run(celeba, tmp_path_factory, run_script):
    """The default (wild, landmarks) protocol over the official partition, with PNG folders, 2 workers."""
    out = tmp_path_factory.mktemp('prepared') / 'CelebA'
    result = run_script('prepare_celeba', '--root', celeba.root, '--out', out, '--save-png', '--workers', 2)
    assert result.returncode == 0, result.stderr
    return out, result


def hr_crop(rgb, region, size=128):
    return np.array(Image.fromarray(crop_square(Image.fromarray(rgb), region)).resize((size, size), Image.BICUBIC))


def decoded_source(path):
    with Image.open(path) as img:
        return np.array(img.convert('RGB'))


def test_wild_run_writes_every_split_with_basicsr_meta_info(celeba, wild_run, read_lines, read_lmdb_images):
    out, _ = wild_run
    assert sorted(os.listdir(out)) == ['test', 'train', 'val']
    for split in ('train', 'val', 'test'):
        keys = celeba.expected_keys(split)
        assert sorted(os.listdir(out / split)) == sorted(
            ['.sfmnet_output', 'prepare_report.txt'] + [f'{label}.lmdb' for label in SFMNET_FOLDERS]
            + list(SFMNET_FOLDERS.values()))
        for label, side in (('HR', 128), ('LR_x4', 32), ('LR_x8', 16), ('LR_x16', 8)):
            assert read_lines(out / split / f'{label}.lmdb' / 'meta_info.txt') == [
                f'{key}.png ({side},{side},3) 1' for key in keys]
            assert sorted(read_lmdb_images(out / split / f'{label}.lmdb')) == keys


def test_wild_lr_images_are_pil_bicubic_of_the_stored_hr(wild_run, pil_downsample, read_lmdb_images):
    out, _ = wild_run
    for split in ('train', 'val', 'test'):
        hr_images = read_lmdb_images(out / split / 'HR.lmdb')
        for scale in SCALES:
            lr_images = read_lmdb_images(out / split / f'LR_x{scale}.lmdb')
            for key, hr in hr_images.items():
                assert np.array_equal(lr_images[key], pil_downsample(hr, scale)), (split, key, scale)


def test_png_folders_hold_the_lmdb_images_in_the_sfmnet_layout(wild_run, read_lmdb_images):
    out, _ = wild_run
    for label, folder in SFMNET_FOLDERS.items():
        stored = read_lmdb_images(out / 'train' / f'{label}.lmdb')
        assert sorted(os.listdir(out / 'train' / folder)) == [f'{key}.png' for key in sorted(stored)]
        for key, image in stored.items():
            assert np.array_equal(np.array(Image.open(out / 'train' / folder / f'{key}.png')), image)


def test_odd_images_are_converted_or_skipped_and_reported_by_name(celeba, wild_run, grace_hopper, grace_hopper_points,
                                                                  place, read_lines, read_lmdb_images):
    out, result = wild_run
    report = '\n'.join(read_lines(out / 'train' / 'prepare_report.txt'))
    for name, mode in celeba.converted.items():
        assert f'{name}: converted {mode} to RGB' in result.stdout
        assert f'{name}: converted {mode} to RGB' in report
    assert '000007.jpg: skipped, unreadable' in report
    assert '000008.jpg: skipped, too small' in report
    assert 'wrote 6 images' in report and 'skipped 2 (too small 1, unreadable 1)' in report

    hr = read_lmdb_images(out / 'train' / 'HR.lmdb')
    grey = hr['000004']
    assert grey.shape == (128, 128, 3) and np.array_equal(grey[..., 0], grey[..., 1])
    # The CMYK file is the colour Grace Hopper canvas; converted back it matches the direct crop.
    canvas, points = place(grace_hopper(), grace_hopper_points, (520, 600), (0, 0), seed=6)
    expected = hr_crop(canvas, square_from_five_points(points, DEFAULT_MARGIN))
    assert np.abs(hr['000006'].astype(int) - expected).mean() < 4


def test_the_crop_follows_the_landmarks(wild_run, astronaut, astronaut_points, read_lmdb_images):
    out, _ = wild_run
    train, test = read_lmdb_images(out / 'train' / 'HR.lmdb'), read_lmdb_images(out / 'test' / 'HR.lmdb')
    # The same photo at two places in two canvases gives the same face crop, pixel for pixel.
    assert np.array_equal(train['000001'], test['000003'])
    # And it is the crop of the photo itself (JPEG noise only); swapped x/y would be far off.
    expected = hr_crop(astronaut(), square_from_five_points(astronaut_points, DEFAULT_MARGIN))
    assert np.abs(train['000001'].astype(int) - expected).mean() < 3


def test_verify_lmdb_accepts_the_prepared_splits(wild_run, run_script):
    out, _ = wild_run
    result = run_script('verify_lmdb', out / 'train', out / 'val', out / 'test', '--workers', 2)
    assert result.returncode == 0, result.stdout + result.stderr
    # per split: 4 LMDBs, 3 HR/LR pairs and the split against its report
    assert result.stdout.count('OK ') == 3 * (4 + 3 + 1) and 'FAIL' not in result.stdout


def test_aligned_protocol_with_split_lists(celeba, tmp_path, pil_downsample, read_lmdb_images):
    lists = {'test': ['000001.jpg', '000003', '000007.jpg'], 'val': ['000002.png']}
    for split, names in lists.items():
        (tmp_path / f'{split}.txt').write_text('\n'.join(names) + '\n')
    out = tmp_path / 'aligned'
    assert prepare_celeba(['--root', celeba.root, '--protocol', 'aligned', '--aligned-crop-size', '138',
                            '--split-list', f'test:{tmp_path / "test.txt"}',
                            '--split-list', f'val:{tmp_path / "val.txt"}',
                            '--scales', '8', '--out', str(out), '--workers', '1']) == 0
    assert sorted(os.listdir(out)) == ['test', 'val']
    assert sorted(os.listdir(out / 'test')) == ['.sfmnet_output', 'HR.lmdb', 'LR_x8.lmdb', 'prepare_report.txt']
    hr = read_lmdb_images(out / 'test' / 'HR.lmdb')
    assert sorted(hr) == ['000001', '000003']  # 000007 is the truncated file
    assert sorted(read_lmdb_images(out / 'val' / 'HR.lmdb')) == ['000002']
    source = decoded_source(osp.join(celeba.root, 'img_align_celeba', '000001.jpg'))
    assert source.shape == (218, 178, 3)
    expected = np.array(Image.fromarray(source[40:178, 20:158]).resize((128, 128), Image.BICUBIC))
    assert np.array_equal(hr['000001'], expected)
    assert np.array_equal(read_lmdb_images(out / 'test' / 'LR_x8.lmdb')['000001'], pil_downsample(expected, 8))


def test_crop_from_bbox_uses_the_official_face_box(celeba, tmp_path, read_lines, read_lmdb_images):
    (tmp_path / 'list.txt').write_text('000002.jpg\n')
    out = tmp_path / 'bbox'
    assert prepare_celeba(['--root', celeba.root, '--crop-from', 'bbox', '--margin', '1.0', '--scales', '8',
                            '--split-list', f'test:{tmp_path / "list.txt"}', '--out', str(out), '--workers', '1']) == 0
    row = next(line for line in read_lines(osp.join(celeba.root, 'Anno', 'list_bbox_celeba.txt'))
               if line.startswith('000002.jpg'))
    x, y, width, height = map(int, row.split()[1:])
    source = decoded_source(osp.join(celeba.root, 'img_celeba', '000002.jpg'))
    expected = hr_crop(source, square_from_bbox(x, y, width, height))
    assert np.array_equal(read_lmdb_images(out / 'test' / 'HR.lmdb')['000002'], expected)


@pytest.fixture(scope='session')
def broken_release(read_lines):
    def broken_release(celeba, tmp_path, relative, edit):
        """A copy of the release's annotation files (images linked) with one file edited."""
        root = tmp_path / 'broken'
        shutil.copytree(osp.join(celeba.root, 'Anno'), root / 'Anno')
        shutil.copytree(osp.join(celeba.root, 'Eval'), root / 'Eval')
        os.symlink(osp.join(celeba.root, 'img_celeba'), root / 'img_celeba')
        path = root / relative
        if edit is None:
            path.unlink()
        else:
            lines = read_lines(path)
            edit(lines)
            path.write_text('\n'.join(lines) + '\n')
        return root, path

    return broken_release


def _set(line_no, text):
    def edit(lines):
        lines[line_no - 1] = text
    return edit


@pytest.mark.parametrize('relative, edit, expected', [
    ('Anno/list_landmarks_celeba.txt', _set(5, '000003.jpg 1 2 3 4 5 6 7 8 9'), 'line 5: expected an image name'),
    ('Anno/list_landmarks_celeba.txt', _set(7, '000005.jpg 1 2 3 4 5 6 7 8 9 x'), 'line 7: expected 10 integers'),
    ('Anno/list_landmarks_celeba.txt', _set(1, '13'), 'line 1: says 13 images but the file has 12 rows'),
    ('Anno/list_landmarks_celeba.txt', _set(2, 'lefteye_x lefteye_y'), 'line 2: expected the header'),
    ('Anno/list_landmarks_celeba.txt', _set(1, 'twelve'), 'line 1: expected the number of images'),
    ('Eval/list_eval_partition.txt', _set(4, '000004.jpg 3'), 'line 4: split 3 is not 0 (train)'),
    ('Eval/list_eval_partition.txt', _set(2, '000002.jpg'), 'line 2: expected an image name and 1 integers'),
    ('Anno/list_landmarks_celeba.txt', None, 'File not found'),
])
def test_malformed_annotations_name_the_file_and_line(celeba, tmp_path, capsys, relative, edit, expected,
                                                      broken_release):
    root, path = broken_release(celeba, tmp_path, relative, edit)
    assert prepare_celeba(['--root', str(root), '--out', str(tmp_path / 'out'), '--workers', '1']) == 2
    error = capsys.readouterr().err
    assert str(path) in error and expected in error
    assert not (tmp_path / 'out').exists()


def test_split_list_names_must_be_annotated(celeba, tmp_path, capsys):
    (tmp_path / 'list.txt').write_text('000001.jpg\n\n999999.jpg\n')
    assert prepare_celeba(['--root', celeba.root, '--split-list', f'test:{tmp_path / "list.txt"}',
                            '--out', str(tmp_path / 'out')]) == 2
    assert f'{tmp_path / "list.txt"}, line 3: 999999.jpg is not in the annotation file' in capsys.readouterr().err


def test_existing_output_is_kept_leftovers_removed_and_overwrite_rebuilds(celeba, tmp_path, capsys):
    (tmp_path / 'list.txt').write_text('000001.jpg\n000009.jpg\n')
    out = tmp_path / 'out'
    (out / 'test.partial' / 'HR.lmdb').mkdir(parents=True)  # as a killed run leaves it (marked as the tool's)
    (out / 'test.partial' / OWNER_MARKER).touch()
    argv = ['--root', celeba.root, '--split-list', f'test:{tmp_path / "list.txt"}', '--scales', '8',
            '--out', str(out), '--workers', '1']
    assert prepare_celeba(argv) == 0
    assert 'Removing' in capsys.readouterr().out
    assert sorted(os.listdir(out)) == ['test']
    meta = out / 'test' / 'HR.lmdb' / 'meta_info.txt'
    first_mtime = meta.stat().st_mtime_ns

    assert prepare_celeba(argv) == 0
    assert 'already exists: skipped' in capsys.readouterr().out
    assert meta.stat().st_mtime_ns == first_mtime

    assert prepare_celeba(argv + ['--overwrite', '--scales', '4']) == 0
    assert sorted(os.listdir(out)) == ['test']
    assert sorted(os.listdir(out / 'test')) == ['.sfmnet_output', 'HR.lmdb', 'LR_x4.lmdb', 'prepare_report.txt']


def test_killed_run_leaves_no_complete_looking_output_and_a_rerun_completes(tmp_path, make_many_celeba_images,
                                                                            read_lines, read_lmdb_images, repo_root,
                                                                            run_script):
    root, out = tmp_path / 'CelebA', tmp_path / 'out'
    names = make_many_celeba_images(str(root), 500)
    command = [sys.executable, osp.join(repo_root, 'datasets_prep', 'prepare_celeba.py'), '--root', str(root),
               '--out', str(out), '--workers', '2']
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / 'train.partial' / 'HR.lmdb' / 'data.mdb').exists():
            assert process.poll() is None and time.monotonic() < deadline, 'the run ended before it could be killed'
            time.sleep(0.02)
        time.sleep(0.5)  # let it write part of the split
        assert process.poll() is None, 'the run finished before the kill; give it more images'
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the script and its worker processes
        process.wait()

    assert not (out / 'train').exists()
    assert (out / 'train.partial').exists()
    assert not list((out / 'train.partial').glob('*.lmdb/meta_info.txt'))

    result = run_script('prepare_celeba', '--root', root, '--out', out, '--workers', 2, '--scales', 8)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out)) == ['train']
    keys = [osp.splitext(name)[0] for name in names]
    assert read_lines(out / 'train' / 'HR.lmdb' / 'meta_info.txt') == [f'{key}.png (128,128,3) 1' for key in keys]
    hr = read_lmdb_images(out / 'train' / 'HR.lmdb')
    assert sorted(hr) == keys
    assert all(np.array_equal(image, hr[keys[0]]) for image in hr.values())  # copies of one photo


def test_crop_square_shifts_inside_or_pads_with_border_pixels():
    rgb = np.arange(80 * 100 * 3, dtype=np.int64).reshape(80, 100, 3).astype(np.uint8)
    # Fits: moved inside the image (left edge at 0), real pixels only.
    assert np.array_equal(crop_square(Image.fromarray(rgb), SquareRegion(10.0, 40.0, 40.0)), rgb[20:60, 0:40])
    # Taller than the image: centred, rows beyond the image repeat the first/last row.
    crop = crop_square(Image.fromarray(rgb), SquareRegion(50.0, 40.0, 90.0))
    assert crop.shape == (90, 90, 3)
    assert np.array_equal(crop[5:85], rgb[:, 5:95])
    assert np.array_equal(crop[0], rgb[0, 5:95]) and np.array_equal(crop[-1], rgb[-1, 5:95])


def test_five_point_square_is_centred_below_the_eyes_and_scales_with_the_face():
    region = square_from_five_points(((40, 50), (80, 50), (60, 70), (45, 90), (75, 90)))
    assert region.cx == pytest.approx(60)
    assert region.cy == pytest.approx(70 + 0.21 * 40)  # midpoint of eyes and mouth, moved towards the mouth
    assert region.side == pytest.approx(max(2.14 * 40, 2.33 * 40))
    assert square_from_five_points(((40, 50), (80, 50), (60, 70), (45, 90), (75, 90)), 2.0).side == \
        pytest.approx(2 * region.side)


def test_a_face_centre_outside_the_image_is_a_bad_annotation():
    image = Image.new('RGB', (100, 80))
    assert SquareCrop(SquareRegion(99.0, 79.0, 50.0))(image)[0].shape == (50, 50, 3)
    with pytest.raises(SkipImage, match=r'bad annotation: the face centre \(120, 40\) lies outside the 100x80 image'):
        SquareCrop(SquareRegion(120.0, 40.0, 50.0))(image)


def test_mtcnn_protocol_crops_the_detected_face_box_of_large_enough_faces(celeba, tmp_path, capsys, pil_downsample,
                                                                          read_lines, read_lmdb_images):
    """SPARNet's protocol on real faces: MTCNN's box made square, no alignment, faces under 128 px skipped."""
    from sfmnet_plugin.faces.detect import MtcnnDetector

    names = tmp_path / 'names.txt'
    names.write_text('000001.jpg\n000002.jpg\n000009.jpg\n')  # astronaut (110 px face), Grace Hopper (166 px), noise
    out = tmp_path / 'CelebA_mtcnn'
    common = ['--root', celeba.root, '--protocol', 'mtcnn', '--split-list', f'train:{names}', '--scales', '8',
              '--workers', '1']
    assert prepare_celeba(common + ['--out', str(out)]) == 0
    report = '\n'.join(read_lines(out / 'train' / 'prepare_report.txt'))
    assert 'wrote 1 image;' in report
    assert '000001.jpg: skipped, too small: face crop of 1' in report  # the 128-px rule of SPARNet
    assert '000009.jpg: skipped, no face: MTCNN found no face' in report
    hr = read_lmdb_images(out / 'train' / 'HR.lmdb')
    assert sorted(hr) == ['000002']
    assert np.array_equal(read_lmdb_images(out / 'train' / 'LR_x8.lmdb')['000002'], pil_downsample(hr['000002'], 8))

    # The crop is the square on the box of the face around the annotated landmarks ...
    source = decoded_source(osp.join(celeba.root, 'img_celeba', '000002.jpg'))
    points = np.array(celeba.landmarks['000002.jpg'], float)
    (face,) = MtcnnDetector()(Image.fromarray(source))
    x0, y0, x1, y1 = face.box
    assert (x0 < points[:, 0]).all() and (points[:, 0] < x1).all() and (y0 < points[:, 1]).all()
    assert np.array_equal(hr['000002'], hr_crop(source, square_from_bbox(x0, y0, x1 - x0, y1 - y0)))
    # ... framing the face about as the wild protocol does (within 15 % of its side, centres close).
    wild = square_from_five_points(points, DEFAULT_MARGIN)
    assert abs(max(x1 - x0, y1 - y0) / wild.side - 1) < 0.15
    assert np.hypot((x0 + x1) / 2 - wild.cx, (y0 + y1) / 2 - wild.cy) < 0.15 * wild.side

    # A lower --min-crop-size keeps the smaller face too.
    assert prepare_celeba(common + ['--out', str(tmp_path / 'small'), '--min-crop-size', '64']) == 0
    assert sorted(read_lmdb_images(tmp_path / 'small' / 'train' / 'HR.lmdb')) == ['000001', '000002']
