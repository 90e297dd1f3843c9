"""The pre-flight compares an LMDB's ``meta_info.txt`` with what it stores, before anything is created: a key that
is listed but not stored, or an image stored at another size, used to stop a run when it was first drawn."""
import numpy as np
import pytest
from PIL import Image

from sfmnet_plugin.launch.preflight import lmdb_problem
from sfmnet_plugin.prep.folder import convert_folder


@pytest.fixture
def lmdb(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / 'src').mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp_path / 'src' / f'{i}.png')
    convert_folder(str(tmp_path / 'src'), str(tmp_path / 'faces.lmdb'), workers=1)
    return tmp_path / 'faces.lmdb'


def test_a_sound_lmdb_has_no_problem(lmdb):
    assert lmdb_problem('datasets.train.dataroot_gt', str(lmdb)) is None


@pytest.mark.parametrize('edit, expected', [
    (lambda text: text + 'ghost.png (16,16,3) 1\n', '1 of the 4 keys in meta_info.txt are not stored (ghost)'),
    (lambda text: text.replace('(16,16,3)', '(32,32,3)'), 'image 0 is stored as 16x16x3 but meta_info.txt lists '
                                                          '32x32x3'),
    (lambda text: text + 'no shape here\n', 'expected "<key>.png (<h>,<w>,<c>) <compress_level>"'),
])
def test_meta_info_that_disagrees_with_the_stored_images_is_one_problem(lmdb, edit, expected):
    meta = lmdb / 'meta_info.txt'
    meta.write_text(edit(meta.read_text()))
    problem = lmdb_problem('datasets.train.dataroot_gt', str(lmdb))
    assert problem is not None and problem.startswith('datasets.train.dataroot_gt: ') and expected in problem
    assert '\n' not in problem
