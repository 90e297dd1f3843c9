"""datasets_prep/folder_to_lmdb.py and datasets_prep/verify_lmdb.py."""
import os
import shutil

import lmdb
import numpy as np
import pytest
from PIL import Image

from sfmnet_cli import folder_to_lmdb, verify_lmdb
from sfmnet_plugin.data.lmdb_reader import check_lmdb
from sfmnet_plugin.prep import folder as prep_folder
from sfmnet_plugin.prep import verify


@pytest.fixture
def mixed_folder(tmp_path, astronaut, grace_hopper, png_bytes, rgba_with_transparent_border):
    """Images of every kind BasicSR users keep in a folder, and what each must become."""
    folder = tmp_path / 'faces'
    folder.mkdir()
    face = astronaut()[60:188, 160:288]
    expected = {'rgb_png': face, 'odd_size': grace_hopper()[:90, :70]}
    Image.fromarray(face).save(folder / 'rgb_png.png')
    Image.fromarray(expected['odd_size']).save(folder / 'odd_size.bmp')
    Image.fromarray(face).convert('L').save(folder / 'grey.png')
    expected['grey'] = np.repeat(np.array(Image.fromarray(face).convert('L'))[:, :, None], 3, axis=2)
    (folder / 'rgba.png').write_bytes(png_bytes(rgba_with_transparent_border(face, border=10)))
    rgba = face.copy()
    rgba[:10] = rgba[-10:] = rgba[:, :10] = rgba[:, -10:] = 255  # transparent: white, not the stored black
    expected['rgba'] = rgba
    Image.fromarray(face).save(folder / 'photo.JPG', quality=95)
    expected['photo'] = np.array(Image.open(folder / 'photo.JPG').convert('RGB'))
    (folder / 'broken.png').write_bytes(png_bytes(Image.fromarray(face))[:300])
    (folder / 'notes.txt').write_text('not an image')
    return folder, expected


def test_folder_becomes_an_rgb_png_lmdb_keyed_by_file_stem(mixed_folder, tmp_path, read_lines, read_lmdb_images,
                                                           run_script):
    folder, expected = mixed_folder
    out = tmp_path / 'out' / 'faces.lmdb'
    result = run_script('folder_to_lmdb', folder, out, '--workers', 2)
    assert result.returncode == 0, result.stderr
    assert 'broken.png: skipped, unreadable' in result.stdout
    assert 'rgba.png: converted RGBA to RGB' in result.stdout and 'grey.png: converted L to RGB' in result.stdout
    stored = read_lmdb_images(out)
    assert sorted(stored) == sorted(expected)
    for key, image in expected.items():
        assert np.array_equal(stored[key], image), key
    assert read_lines(out / 'meta_info.txt') == [
        f'{key}.png ({image.shape[0]},{image.shape[1]},3) 1' for key, image in sorted(expected.items())]
    assert not (tmp_path / 'out' / 'faces.lmdb.partial').exists()


def test_verify_cli_exit_codes(mixed_folder, tmp_path, capsys, run_script):
    folder, _ = mixed_folder
    out = tmp_path / 'faces.lmdb'
    assert folder_to_lmdb.main([str(folder), str(out), '--workers', '1']) == 0
    assert verify_lmdb.main([str(out), '--workers', '1']) == 0
    assert f'OK   {out}: 5 images' in capsys.readouterr().out
    with open(out / 'meta_info.txt', 'a') as f:
        f.write('ghost.png (128,128,3) 1\n')
    bad = run_script('verify_lmdb', out, '--workers', 1)
    assert bad.returncode == 1 and 'FAIL' in bad.stdout and 'not stored: ghost' in bad.stdout


@pytest.fixture(scope='session')
def sfmnet_layout(astronaut, grace_hopper, pil_downsample):
    def sfmnet_layout(root, keys=('000001', '000002', '000003')):
        """The released SFMNet test-set layout: HR/, LR_bicubic/ (x8), LR_x4_bicubic/, LR_x16_bicubic/."""
        grace = np.array(Image.fromarray(grace_hopper()[100:356, 140:396]).resize((128, 128)))
        faces = [astronaut()[60:188, 160:288], grace]
        for index, key in enumerate(keys):
            hr = faces[index % 2] if index < 2 else faces[0][::-1].copy()
            for folder, scale in (('HR', 1), ('LR_bicubic', 8), ('LR_x4_bicubic', 4), ('LR_x16_bicubic', 16)):
                (root / folder).mkdir(parents=True, exist_ok=True)
                Image.fromarray(hr if scale == 1 else pil_downsample(hr, scale)).save(root / folder / f'{key}.png')
        return root

    return sfmnet_layout


def test_sfmnet_layout_becomes_named_lmdbs_that_pair_up(tmp_path, capsys, read_lmdb_images, sfmnet_layout):
    source = sfmnet_layout(tmp_path / 'test')
    out = tmp_path / 'lmdb'
    assert folder_to_lmdb.main(['--sfmnet-layout', str(source), str(out), '--workers', '1']) == 0
    assert sorted(os.listdir(out)) == ['HR.lmdb', 'LR_x16.lmdb', 'LR_x4.lmdb', 'LR_x8.lmdb']
    assert np.array_equal(read_lmdb_images(out / 'LR_x8.lmdb')['000002'],
                          np.array(Image.open(source / 'LR_bicubic' / '000002.png')))
    assert verify_lmdb.main([str(out), '--workers', '1']) == 0
    assert capsys.readouterr().out.count('OK ') == 4 + 3


def test_sfmnet_layout_reports_lr_images_that_do_not_pair(tmp_path, capsys, sfmnet_layout):
    source = sfmnet_layout(tmp_path / 'test')
    (source / 'LR_x4_bicubic' / '000003.png').unlink()
    Image.fromarray(np.zeros((20, 16, 3), np.uint8)).save(source / 'LR_bicubic' / '000002.png')
    assert folder_to_lmdb.main(['--sfmnet-layout', str(source), str(tmp_path / 'lmdb'), '--workers', '1']) == 1
    printed = capsys.readouterr().out
    assert 'missing from' in printed and '000003' in printed
    assert 'not 8 x their LR image' in printed and '000002 (HR (128, 128, 3), LR (20, 16, 3))' in printed


def test_existing_lmdb_is_kept_unless_overwrite(mixed_folder, tmp_path, capsys, read_lmdb_images):
    folder, _ = mixed_folder
    out = tmp_path / 'faces.lmdb'
    assert folder_to_lmdb.main([str(folder), str(out), '--workers', '1']) == 0
    (folder / 'rgb_png.png').unlink()
    assert folder_to_lmdb.main([str(folder), str(out), '--workers', '1']) == 0
    assert 'already exists: skipped' in capsys.readouterr().out
    assert 'rgb_png' in read_lmdb_images(out)
    assert folder_to_lmdb.main([str(folder), str(out), '--workers', '1', '--overwrite']) == 0
    assert 'rgb_png' not in read_lmdb_images(out)


@pytest.mark.parametrize('file_name, output, expected', [
    ('my face.png', 'faces.lmdb', 'cannot be LMDB keys'),
    ('face.v2.png', 'faces.lmdb', 'cannot be LMDB keys'),
    ('face.png', 'faces', 'must end with .lmdb'),
])
def test_bad_names_are_refused_before_writing(tmp_path, capsys, file_name, output, expected, astronaut):
    (tmp_path / 'in').mkdir()
    Image.fromarray(astronaut()[:64, :64]).save(tmp_path / 'in' / file_name)
    assert folder_to_lmdb.main([str(tmp_path / 'in'), str(tmp_path / output)]) == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / output).exists()


@pytest.fixture
def sound_pair(tmp_path, sfmnet_layout):
    source = sfmnet_layout(tmp_path / 'test')
    out = tmp_path / 'lmdb'
    assert prep_folder.convert_sfmnet_layout(str(source), str(out), workers=1) == []
    copy = tmp_path / 'tampered'
    shutil.copytree(out, copy)
    return copy


def _tamper(lmdb_path, edit):
    env = lmdb.open(str(lmdb_path))
    with env.begin(write=True) as txn:
        edit(txn)
    env.close()


def test_verify_finds_missing_extra_undecodable_and_misshapen_images(sound_pair, read_lines):
    hr = sound_pair / 'HR.lmdb'
    _tamper(hr, lambda txn: txn.delete(b'000001'))
    _tamper(hr, lambda txn: txn.put(b'stray', b'x'))
    _tamper(hr, lambda txn: txn.put(b'000002', b'\x89PNG\r\n\x1a\n not really'))
    meta = read_lines(hr / 'meta_info.txt')
    (hr / 'meta_info.txt').write_text('\n'.join(meta[:2] + ['000003.png (64,128,3) 1']) + '\n')
    problems = check_lmdb(str(hr), workers=1)
    assert any('not stored: 000001' in problem for problem in problems)
    assert any('not in meta_info.txt: stray' in problem for problem in problems)
    assert any(problem.startswith('000002: cannot decode') for problem in problems)
    assert any('000003: stored image is (128, 128, 3)' in problem and '(64, 128, 3)' in problem for problem in problems)


def test_verify_reports_a_malformed_meta_info_line(sound_pair):
    lr = sound_pair / 'LR_x8.lmdb'
    (lr / 'meta_info.txt').write_text('000001.png (16,16,3) 1\n000002.png 16x16 1\n')
    problems = check_lmdb(str(lr))
    assert len(problems) == 1 and 'meta_info.txt, line 2: expected' in problems[0]


def test_verify_pair_checks_the_stated_scale(sound_pair, capsys):
    assert verify.check_pair(str(sound_pair / 'HR.lmdb'), str(sound_pair / 'LR_x8.lmdb'), 8) == []
    assert verify_lmdb.main(['--pair', str(sound_pair / 'HR.lmdb'), str(sound_pair / 'LR_x8.lmdb'), '4']) == 1
    assert 'HR images are not 4 x their LR image' in capsys.readouterr().out
