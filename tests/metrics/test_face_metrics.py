"""Identity similarity (dlib ResNet-128, ArcFace ONNX) and landmark NME (dlib 68 points) on real public-domain faces."""
import math
import sys

import cv2
import numpy as np
import pytest
import torch
from basicsr.metrics import calculate_metric
from PIL import Image

from sfmnet_plugin.metrics import face_models
from sfmnet_plugin.metrics.face_identity_metric import (
    ARCFACE_TEMPLATE_112,
    arcface_points,
    arcface_warp,
    calculate_identity_similarity,
)
from sfmnet_plugin.metrics.face_landmark_metric import calculate_landmark_nme
from sfmnet_plugin.metrics.face_models import FaceMetricsUnavailable, dlib_models, face_box, hr_landmarks, landmarks


@pytest.fixture(scope='module')
def faces(aligned_public_domain_faces):
    """BGR 128x128 crops, as BasicSR passes images to metrics."""
    return {name: np.ascontiguousarray(rgb[..., ::-1]) for name, rgb in aligned_public_domain_faces().items()}


def bicubic_degraded(bgr, scale):
    """The face down by ``scale`` and back up with PIL bicubic: the bicubic baseline of x``scale`` SR."""
    size = bgr.shape[0]
    small = Image.fromarray(bgr).resize((size // scale, size // scale), Image.BICUBIC)
    return np.array(small.resize((size, size), Image.BICUBIC))


# ---------------------------------------------------------------------------------------------- face box

def test_face_box_is_the_detectors_and_the_fallback_is_where_it_puts_aligned_faces(faces):
    fallback = tuple(round(v * 128) for v in face_models.FALLBACK_BOX)
    for name in ('astronaut', 'grace_hopper'):
        detected = face_box(faces[name][..., ::-1].copy())
        assert np.abs(np.subtract(detected, fallback)).max() <= 10, (name, detected)
    assert face_box(np.full((128, 128, 3), 128, np.uint8)) == fallback  # no face found
    assert face_box(np.full((256, 256, 3), 128, np.uint8)) == tuple(2 * v for v in fallback)


# ---------------------------------------------------------------------------------------------- identity

def test_the_same_person_scores_higher_than_another_person(faces):
    hr = faces['astronaut']
    same_person = calculate_identity_similarity(faces['astronaut_jittered'], hr)
    other_person = calculate_identity_similarity(faces['grace_hopper'], hr)
    assert same_person > other_person + 0.05
    # and seen from the other person
    assert (calculate_identity_similarity(faces['astronaut_jittered'], faces['grace_hopper'])
            < calculate_identity_similarity(faces['grace_hopper'], faces['grace_hopper']))


def test_bicubic_x8_scores_below_the_hr_itself_and_below_x4(faces):
    for name in ('astronaut', 'grace_hopper'):
        hr = faces[name]
        itself = calculate_identity_similarity(hr, hr)
        x4 = calculate_identity_similarity(bicubic_degraded(hr, 4), hr)
        x8 = calculate_identity_similarity(bicubic_degraded(hr, 8), hr)
        assert itself == pytest.approx(1.0, abs=1e-12)
        assert x8 < x4 < itself


def test_values_agree_with_dlibs_own_descriptors_and_distance(faces):
    """dlib's own pipeline (detector, 5-point shape, compute_face_descriptor(image, shape)) on the same pair."""
    models = dlib_models()
    hr_bgr, sr_bgr = faces['astronaut'], bicubic_degraded(faces['astronaut'], 8)
    hr_rgb, sr_rgb = hr_bgr[..., ::-1].copy(), sr_bgr[..., ::-1].copy()
    box = max(models['detector'](hr_rgb, 0), key=lambda rect: rect.area())
    shape = models['landmarks_5'](hr_rgb, box)
    hr_descriptor = np.array(models['recognizer'].compute_face_descriptor(hr_rgb, shape))
    sr_descriptor = np.array(models['recognizer'].compute_face_descriptor(sr_rgb, shape))
    distance = np.linalg.norm(hr_descriptor - sr_descriptor)  # dlib's measure: < 0.6 means the same person

    similarity = calculate_identity_similarity(sr_bgr, hr_bgr)
    hr_norm, sr_norm = np.linalg.norm(hr_descriptor), np.linalg.norm(sr_descriptor)
    assert similarity == pytest.approx(hr_descriptor @ sr_descriptor / (hr_norm * sr_norm), abs=1e-9)
    # the law of cosines links the two: |a - b|^2 = |a|^2 + |b|^2 - 2 |a| |b| cos
    assert distance ** 2 == pytest.approx(hr_norm ** 2 + sr_norm ** 2 - 2 * hr_norm * sr_norm * similarity, rel=1e-9)
    assert 0 < distance < 0.6  # x8 bicubic of one face: still "the same person" for dlib


def test_registered_and_called_like_basicsr_validation(faces):
    options = {'type': 'calculate_identity_similarity'}
    data = {'img': faces['grace_hopper'], 'img2': faces['astronaut']}
    assert calculate_metric(data, options) == calculate_identity_similarity(**data)
    chw = {key: image.transpose(2, 0, 1) for key, image in data.items()}
    assert calculate_metric(chw, {**options, 'input_order': 'CHW'}) == calculate_identity_similarity(**data)


def test_unknown_backend_and_missing_onnx_path_are_clear_errors(faces):
    with pytest.raises(ValueError, match='unknown backend'):
        calculate_identity_similarity(faces['astronaut'], faces['astronaut'], backend='facenet')
    with pytest.raises(ValueError, match='needs onnx_path'):
        calculate_identity_similarity(faces['astronaut'], faces['astronaut'], backend='onnx')


@pytest.fixture(scope='module')
def tiny_onnx_embedder(tmp_path_factory):
    """A small random conv net taking 1x3x112x112 and returning a 32-D embedding, exported to ONNX."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 5, stride=4), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(8 * 27 * 27, 32)).eval()
    path = tmp_path_factory.mktemp('onnx') / 'embedder.onnx'
    with pytest.warns(DeprecationWarning):  # torch's legacy exporter: no onnxscript needed
        torch.onnx.export(net, (torch.zeros(1, 3, 112, 112),), str(path), dynamo=False, input_names=['input'])
    return net, str(path)


def test_onnx_backend_aligns_like_arcface_and_feeds_normalised_rgb(faces, tiny_onnx_embedder):
    net, path = tiny_onnx_embedder
    hr_bgr, sr_bgr = faces['astronaut'], bicubic_degraded(faces['astronaut'], 8)
    hr_rgb, sr_rgb = hr_bgr[..., ::-1].copy(), sr_bgr[..., ::-1].copy()
    warp = arcface_warp(hr_rgb, (112, 112))
    # the warp puts the HR's eye centres, nose tip and mouth corners near ArcFace's template (a least-squares
    # fit: this smiling mouth is wider than the template's)
    points = arcface_points(hr_landmarks(hr_rgb))
    errors = np.linalg.norm(points @ warp[:, :2].T + warp[:, 2] - ARCFACE_TEMPLATE_112, axis=1)
    assert errors[:2].max() < 4 and errors.mean() < 6, errors

    def embedding(rgb):
        crop = cv2.warpAffine(rgb, warp, (112, 112), flags=cv2.INTER_LINEAR)
        with torch.no_grad():
            return net(torch.from_numpy((crop.astype(np.float32) - 127.5) / 127.5).permute(2, 0, 1)[None])[0]

    expected = torch.nn.functional.cosine_similarity(embedding(sr_rgb), embedding(hr_rgb), dim=0).item()
    similarity = calculate_identity_similarity(sr_bgr, hr_bgr, backend='onnx', onnx_path=path)
    assert similarity == pytest.approx(expected, abs=1e-5)
    assert calculate_identity_similarity(hr_bgr, hr_bgr, backend='onnx', onnx_path=path) == pytest.approx(1, abs=1e-6)


# ---------------------------------------------------------------------------------------------- landmark NME

def test_nme_is_zero_for_identical_images(faces):
    for face in faces.values():
        assert calculate_landmark_nme(face, face) == 0.0


def test_nme_grows_with_degradation(faces):
    for name in ('astronaut', 'grace_hopper'):
        hr = faces[name]
        nmes = [calculate_landmark_nme(bicubic_degraded(hr, scale), hr) for scale in (2, 4, 8)]
        assert 0 < nmes[0] < nmes[1] < nmes[2] < 0.2, nmes


def test_nme_by_hand_on_one_image(faces):
    hr_bgr, sr_bgr = faces['grace_hopper'], bicubic_degraded(faces['grace_hopper'], 4)
    hr_rgb, sr_rgb = hr_bgr[..., ::-1].copy(), sr_bgr[..., ::-1].copy()
    box = face_box(hr_rgb)
    hr_points, sr_points = landmarks(hr_rgb, box), landmarks(sr_rgb, box)
    assert hr_points.shape == sr_points.shape == (68, 2)
    total = 0.0
    for (x, y), (x_hr, y_hr) in zip(sr_points, hr_points):
        total += math.sqrt((x - x_hr) ** 2 + (y - y_hr) ** 2)
    outer_corners = math.dist(hr_points[36], hr_points[45])  # iBUG points 37 and 46
    assert calculate_landmark_nme(sr_bgr, hr_bgr) == pytest.approx(total / 68 / outer_corners, rel=1e-12)
    pupils = math.dist(hr_points[36:42].mean(0), hr_points[42:48].mean(0))
    assert calculate_landmark_nme(sr_bgr, hr_bgr, normalization='inter_pupil') == pytest.approx(
        total / 68 / pupils, rel=1e-12)
    # an 128-px aligned face: outer eye corners about 50 px apart, the eye centres closer
    assert 35 < pupils < outer_corners < 70


def test_a_shifted_face_gives_the_shift_over_the_inter_ocular_distance(faces):
    """Every landmark of a face moved by sqrt(13) px moves by sqrt(13) px: NME = sqrt(13) / inter-ocular distance.

    Averaged over three such shifts: the regression trees follow a moved face to within a few tenths of a pixel.
    """
    for name in ('astronaut', 'grace_hopper'):
        hr = faces[name]
        nmes = [calculate_landmark_nme(cv2.warpAffine(hr, np.float32([[1, 0, dx], [0, 1, dy]]), (128, 128),
                                                      borderMode=cv2.BORDER_REPLICATE), hr)
                for dx, dy in ((3, -2), (-3, 2), (2, 3))]
        outer_corners = math.dist(*hr_landmarks(hr[..., ::-1].copy())[[36, 45]])
        assert np.mean(nmes) == pytest.approx(math.sqrt(13) / outer_corners, rel=0.05), (name, nmes)


def test_sub_pixel_landmarks_agree_with_dlibs_integer_ones(faces):
    models = dlib_models()
    rgb = faces['astronaut'][..., ::-1].copy()
    box = face_box(rgb)
    integer = models['landmarks_68'](rgb, face_models.dlib_rectangle(box))
    integer = np.array([(p.x, p.y) for p in integer.parts()], dtype=float)
    sub_pixel = landmarks(rgb, box)
    assert np.abs(sub_pixel - integer).mean() < 1.0
    assert np.any(sub_pixel != np.round(sub_pixel))  # quarter pixels, not whole ones


def test_nme_option_errors(faces):
    with pytest.raises(ValueError, match='unknown normalization'):
        calculate_landmark_nme(faces['astronaut'], faces['astronaut'], normalization='face_size')
    with pytest.raises(ValueError, match='shapes are different'):
        calculate_landmark_nme(faces['astronaut'], faces['astronaut'][:64])


# ---------------------------------------------------------------------------------------------- without the extra

def test_without_the_extra_the_metrics_say_what_to_install(faces, monkeypatch):
    dlib_models.cache_clear()
    monkeypatch.setitem(sys.modules, 'dlib', None)  # import dlib -> ImportError
    monkeypatch.setattr(face_models, 'HR_CACHE', face_models.ImageKeyedCache())
    try:
        for metric in (calculate_identity_similarity, calculate_landmark_nme):
            with pytest.raises(FaceMetricsUnavailable, match=r'pip install -e "\.\[face-metrics\]"'):
                metric(faces['astronaut'], faces['astronaut'])
    finally:
        dlib_models.cache_clear()
