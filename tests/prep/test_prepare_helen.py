"""datasets_prep/prepare_helen.py on a miniature Helen (photos + 194-point annotation files)."""
import math
import os
from os import path as osp

import numpy as np
import pytest
from PIL import Image

from sfmnet_cli import prepare_helen


@pytest.fixture(scope='module')
def helen(tmp_path_factory, make_helen_release):
    return make_helen_release(str(tmp_path_factory.mktemp('helen')))


def expected_hr(photo_path, points, margin=1.1, size=128):
    """The HR face written out independently: the landmarks' box made square, centred, PIL bicubic."""
    points = np.asarray(points)
    low, high = points.min(axis=0), points.max(axis=0)
    side = math.floor((high - low).max() * margin + 0.5)
    centre = (low + high) / 2
    left, top = (math.floor(c - side / 2 + 0.5) for c in centre)
    with Image.open(photo_path) as img:
        rgb = np.array(img.convert('RGB'))
    assert 0 <= left and 0 <= top and left + side <= rgb.shape[1] and top + side <= rgb.shape[0]
    return np.array(Image.fromarray(rgb[top:top + side, left:left + side]).resize((size, size), Image.BICUBIC))


def photo_path(helen, name):
    paths = [osp.join(folder, f'{name}.jpg') for folder in helen.images]
    return next(path for path in paths if osp.exists(path))


def test_photos_are_cropped_around_the_landmarks_and_split_by_the_test_list(helen, tmp_path, pil_downsample,
                                                                            read_lines, read_lmdb_images, run_script):
    out = tmp_path / 'Helen'
    args = ['--annotations', helen.annotations, '--test-list', helen.test_list, '--out', out, '--workers', 2]
    for folder in helen.images:
        args += ['--images', folder]
    result = run_script('prepare_helen', *args)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out)) == ['test', 'train']
    for split, names in (('test', helen.test_names), ('train', helen.train_names)):
        hr = read_lmdb_images(out / split / 'HR.lmdb')
        assert sorted(hr) == sorted(names)
        for name in names:
            assert np.array_equal(hr[name], expected_hr(photo_path(helen, name), helen.points[name])), name
        for scale in (4, 8, 16):
            lr = read_lmdb_images(out / split / f'LR_x{scale}.lmdb')
            assert read_lines(out / split / f'LR_x{scale}.lmdb' / 'meta_info.txt') == [
                f'{name}.png ({128 // scale},{128 // scale},3) 1' for name in sorted(names)]
            assert all(np.array_equal(lr[name], pil_downsample(hr[name], scale)) for name in names)


@pytest.fixture(scope='session')
def annotation_copy(read_lines):
    def annotation_copy(helen, tmp_path, edit):
        folder = tmp_path / 'annotation'
        folder.mkdir()
        for name in os.listdir(helen.annotations):
            lines = read_lines(osp.join(helen.annotations, name))
            if name == '1.txt':
                edit(lines)
            (folder / name).write_text('\n'.join(lines) + '\n')
        return folder

    return annotation_copy


@pytest.mark.parametrize('edit, expected', [
    (lambda lines: lines.pop(), 'line 195: expected 194 landmark lines after the name, found 193'),
    (lambda lines: lines.__setitem__(10, '12.5 ; 30.0'), 'line 11: expected "x , y"'),
    (lambda lines: lines.__setitem__(0, ''), 'line 1: expected the image name'),
])
def test_malformed_annotation_files_name_the_file_and_line(helen, tmp_path, capsys, edit, expected, annotation_copy):
    annotations = annotation_copy(helen, tmp_path, edit)
    argv = ['--images', helen.images[0], '--annotations', str(annotations), '--out', str(tmp_path / 'out')]
    assert prepare_helen.main(argv) == 2
    error = capsys.readouterr().err
    assert str(annotations / '1.txt') in error and expected in error
    assert not (tmp_path / 'out').exists()


def test_test_list_names_must_be_annotated(helen, tmp_path, capsys):
    (tmp_path / 'list.txt').write_text('2908549_1\nno_such_face\n')
    argv = ['--images', helen.images[0], '--annotations', helen.annotations, '--test-list', str(tmp_path / 'list.txt'),
            '--out', str(tmp_path / 'out')]
    assert prepare_helen.main(argv) == 2
    assert f'{tmp_path / "list.txt"}, line 2: no_such_face has no annotation file' in capsys.readouterr().err


def test_a_photo_missing_for_an_annotation_is_reported_and_skipped(helen, tmp_path, capsys, read_lmdb_images,
                                                                   write_helen_annotation, annotation_copy):
    annotations = annotation_copy(helen, tmp_path, lambda lines: None)
    points = [(10.0 + i % 7, 20.0 + i % 11) for i in range(194)]
    write_helen_annotation(annotations / '99.txt', 'not_downloaded_1', points)
    argv = ['--annotations', str(annotations), '--out', str(tmp_path / 'out'), '--scales', '8', '--workers', '1']
    for folder in helen.images:
        argv += ['--images', folder]
    assert prepare_helen.main(argv) == 0
    assert 'not_downloaded_1.jpg: skipped, unreadable: No such file or directory' in capsys.readouterr().out
    written = read_lmdb_images(tmp_path / 'out' / 'train' / 'HR.lmdb')
    assert sorted(written) == sorted(helen.test_names + helen.train_names)


def test_from_aligned_keeps_hr_sized_crops_resizes_others_and_rejects_non_square(tmp_path, capsys, astronaut,
                                                                                 pil_downsample, read_lmdb_images):
    aligned = tmp_path / 'aligned'
    aligned.mkdir()
    face = astronaut()[60:316, 100:356]  # 256 x 256
    exact = np.array(Image.fromarray(face).resize((128, 128), Image.LANCZOS))
    Image.fromarray(exact).save(aligned / 'exact.png')
    Image.fromarray(face).save(aligned / 'large.png')
    Image.fromarray(exact).convert('L').save(aligned / 'grey.png')
    Image.fromarray(face[:, :200]).save(aligned / 'narrow.png')
    out = tmp_path / 'out'
    assert prepare_helen.main(['--from-aligned', str(aligned), '--out', str(out), '--scales', '8',
                               '--workers', '1']) == 0
    printed = capsys.readouterr().out
    assert 'narrow.png: skipped, not square: image 200x256' in printed
    assert 'grey.png: converted L to RGB' in printed
    assert sorted(os.listdir(out)) == ['test']
    hr = read_lmdb_images(out / 'test' / 'HR.lmdb')
    assert sorted(hr) == ['exact', 'grey', 'large']
    assert np.array_equal(hr['exact'], exact)  # already the HR size: stored untouched
    assert np.array_equal(hr['large'], np.array(Image.fromarray(face).resize((128, 128), Image.BICUBIC)))
    assert np.array_equal(read_lmdb_images(out / 'test' / 'LR_x8.lmdb')['exact'], pil_downsample(exact, 8))
