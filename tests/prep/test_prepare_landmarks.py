"""``--landmarks 68`` of the preparation tools: dlib's landmarks of every stored HR face beside its LMDB, faces
without a detected face reported and listed, a clear error without dlib's predictor."""
import numpy as np
import pytest
from PIL import Image

from sfmnet_cli import prepare_helen
from sfmnet_cli.folder_to_lmdb import main as folder_to_lmdb
from sfmnet_plugin.data.face_landmarks import read_landmark_file
from sfmnet_plugin.prep import landmarks as prep_landmarks


@pytest.fixture(scope='module')
def faces(tmp_path_factory, write_real_face_pairs, smooth_noise):
    """Three real face crops (public-domain photos) and one image without a face."""
    root = tmp_path_factory.mktemp('landmark_faces')
    write_real_face_pairs(str(root), 3, 128, 8)
    Image.fromarray(smooth_noise(128, 128, seed=5)).save(root / 'gt' / 'noise.png')
    return root / 'gt'


def test_folder_to_lmdb_stores_dlib_landmarks_and_lists_faces_without_one(faces, tmp_path, capsys):
    lmdb = tmp_path / 'HR.lmdb'
    assert folder_to_lmdb([str(faces), str(lmdb), '--landmarks', '68', '--workers', '1']) == 0
    out = capsys.readouterr().out
    assert 'HR.lmdb: 68 landmarks for 3 of 4 faces' in out
    assert 'dlib found no face in 1 faces (noise)' in out and 'landmarks_68_missing.txt' in out
    landmarks = read_landmark_file(lmdb / 'landmarks_68.txt', 68)
    assert sorted(landmarks) == ['face000', 'face001', 'face002']
    assert (lmdb / 'landmarks_68_missing.txt').read_text() == 'noise\n'
    detector, predictor = prep_landmarks.dlib_landmark_models()
    for key, points in landmarks.items():  # dlib's own points on the stored image
        image = np.asarray(Image.open(faces / f'{key}.png').convert('RGB'))
        shape = predictor(image, max(detector(image, 0), key=lambda rect: rect.area()))
        np.testing.assert_array_equal(points, [(part.x, part.y) for part in shape.parts()])
        assert points[36:48, 1].mean() < points[27:36, 1].mean() < points[48:68, 1].mean()  # eyes, nose, mouth
    # a rebuild recognises the landmark files as its own output
    assert folder_to_lmdb([str(faces), str(lmdb), '--landmarks', '68', '--workers', '1', '--overwrite']) == 0


def test_prepare_helen_writes_the_landmarks_beside_hr_lmdb(faces, tmp_path):
    assert prepare_helen.main(['--from-aligned', str(faces), '--split-name', 'test', '--out', str(tmp_path),
                               '--scales', '8', '--landmarks', '68', '--workers', '1']) == 0
    landmarks = read_landmark_file(tmp_path / 'test' / 'HR.lmdb' / 'landmarks_68.txt', 68)
    assert sorted(landmarks) == ['face000', 'face001', 'face002']
    assert not (tmp_path / 'test' / 'LR_x8.lmdb' / 'landmarks_68.txt').exists()


def test_without_dlib_the_tool_names_the_predictor_and_the_extra(faces, tmp_path, monkeypatch, capsys):
    def unavailable():
        raise ModuleNotFoundError("No module named 'dlib'", name='dlib')

    monkeypatch.setattr(prep_landmarks, 'dlib_landmark_models', unavailable)
    assert folder_to_lmdb([str(faces), str(tmp_path / 'HR.lmdb'), '--landmarks', '68']) == 2
    error = capsys.readouterr().err.strip()
    assert error.count('\n') == 0 and 'shape_predictor_68_face_landmarks.dat' in error and 'face-metrics' in error
    assert not (tmp_path / 'HR.lmdb').exists()
