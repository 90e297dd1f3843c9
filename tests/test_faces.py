"""Face alignment maths and the offline face set (public-domain photos only: no download in tests)."""
import json

import numpy as np
import pytest
from PIL import Image

from sfmnet_plugin.faces import FACE_TEMPLATE_128, align_face, build_face_set, similarity_transform
from sfmnet_plugin.faces.align import jitter_transform


def apply(matrix, points):
    return np.asarray(points) @ matrix[:, :2].T + matrix[:, 2]


def test_similarity_transform_recovers_a_known_similarity():
    angle, scale, shift = np.deg2rad(17), 1.7, np.array([12.0, -30.0])
    known = np.hstack([scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]),
                       shift[:, None]])
    source = np.array([[10.0, 20.0], [50.0, 22.0], [30.0, 40.0], [15.0, 60.0], [45.0, 61.0]])
    np.testing.assert_allclose(similarity_transform(source, apply(known, source)), known, atol=1e-9)


def test_similarity_transform_never_mirrors():
    source = FACE_TEMPLATE_128
    mirrored = source * [-1, 1]
    matrix = similarity_transform(source, mirrored)
    assert np.linalg.det(matrix[:, :2]) > 0


def dots_image(points, size=(300, 260)):
    image = np.zeros((size[1], size[0], 3), np.uint8)
    for x, y in np.round(points).astype(int):
        image[y - 2:y + 3, x - 2:x + 3] = 255
    return Image.fromarray(image)


def test_align_face_puts_the_landmarks_on_the_template():
    landmarks = apply(np.array([[1.4, -0.3, 70.0], [0.3, 1.4, 40.0]]), FACE_TEMPLATE_128)  # some face in a photo
    aligned = np.asarray(align_face(dots_image(landmarks), landmarks, size=128)).max(axis=2).astype(float)
    for x, y in FACE_TEMPLATE_128:
        window = aligned[int(y) - 4:int(y) + 5, int(x) - 4:int(x) + 5]
        dy, dx = np.unravel_index(window.argmax(), window.shape)
        assert window.max() > 100 and abs(dx - 4) <= 1 and abs(dy - 4) <= 1


def test_jitter_is_a_small_deterministic_similarity():
    first, second = jitter_transform(np.random.default_rng(3)), jitter_transform(np.random.default_rng(3))
    np.testing.assert_array_equal(first, second)
    scale = np.sqrt(abs(np.linalg.det(first[:2, :2])))
    assert 0.93 < scale < 1.07 and np.abs(first[:2, 2] - (np.eye(2) - first[:2, :2]) @ [64, 64]).max() < 0.05 * 128


def test_face_set_from_the_public_domain_photos(tmp_path):
    pytest.importorskip('facenet_pytorch', reason='setup_env.sh installs facenet-pytorch for the face set')
    summary = build_face_set(str(tmp_path), sources=(), test_variants=3, seed=0)
    records = json.loads((tmp_path / 'sources.json').read_text())
    assert '2 photos, 2 faces' in summary
    assert [r['split'] for r in records] == ['test'] * 6 and not list((tmp_path / 'train' / 'HR').iterdir())
    assert {r['licence'] for r in records} == {'public domain'}
    for record in records:
        image = Image.open(tmp_path / 'test' / 'HR' / f'{record["name"]}.png')
        assert image.size == (128, 128) and image.mode == 'RGB'
    # deterministic: the same seed gives the same pixels
    again = tmp_path / 'again'
    build_face_set(str(again), sources=(), test_variants=3, seed=0)
    name = records[-1]['name']
    assert np.array_equal(np.asarray(Image.open(again / 'test' / 'HR' / f'{name}.png')),
                          np.asarray(Image.open(tmp_path / 'test' / 'HR' / f'{name}.png')))
