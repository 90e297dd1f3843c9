"""Whole-photo restoration on a group photo of public-domain faces, with tiny random networks.

The group photo puts the faces of the two photos installed with scikit-image and matplotlib at several sizes on one
canvas, so every landmark is known: some faces are restored, one is too small, one too large, one uncertain.
Geometry is checked directly: each pasted region equals the restored face warped back through the inverse of its
alignment, and every other pixel of the photo is untouched.
"""
import json
import re

import cv2
import numpy as np
import pytest
import torch
from basicsr.archs import build_network
from PIL import Image

from sfmnet_cli.restore import main as restore_main
from sfmnet_plugin.faces.detect import DetectedFace
from sfmnet_plugin.inference import FaceRestorer, InferenceError
from sfmnet_plugin.inference.whole_photo import (
    FFHQ_TEMPLATE_512,
    POSSIBLE_FACE,
    WholePhotoRestorer,
    feathered_mask,
    ffhq_transform,
    same_face,
)

FACE_SIZE = 64
TINY_HD = {'type': 'SPARNetHD', 'min_ch': 4, 'max_ch': 16, 'in_size': FACE_SIZE, 'out_size': FACE_SIZE,
           'min_feat_size': 16, 'res_depth': 1, 'bottleneck_size': 16}
TINY_SR_X4 = {**TINY_HD, 'type': 'SPARNet', 'upscale': 4, 'norm_type': 'bn'}
# name: (source photo, scale, position on the canvas, detector score)
FACES = {
    'restored_large': ('astronaut', 0.5, (20, 30), 1.0),
    'restored_medium': ('grace_hopper', 0.3, (150, 40), 0.99),
    'restored_small': ('astronaut', 0.2, (260, 60), 0.98),
    'too_large': ('astronaut', 1.0, (20, 200), 1.0),
    'too_small': ('grace_hopper', 0.03, (300, 200), 0.97),
    'uncertain': ('grace_hopper', 0.25, (350, 230), 0.5),
}


@pytest.fixture(scope='module')
def group_photo(astronaut, astronaut_points, grace_hopper, grace_hopper_points, smooth_noise):
    """A 460 x 420 canvas with six faces; returns (photo, {name: DetectedFace}) in the canvas's coordinates."""
    sources = {'astronaut': (astronaut, astronaut_points, (130, 20, 330, 250)),
               'grace_hopper': (grace_hopper, grace_hopper_points, (130, 60, 400, 380))}
    canvas = smooth_noise(420, 460, seed=3)
    detections = {}
    for name, (source, scale, (x, y), score) in FACES.items():
        load, points, (left, top, right, bottom) = sources[source]
        face = Image.fromarray(load()[top:bottom, left:right])
        face = np.array(face.resize((round(face.width * scale), round(face.height * scale)), Image.BICUBIC))
        height, width = min(face.shape[0], 420 - y), min(face.shape[1], 460 - x)
        canvas[y:y + height, x:x + width] = face[:height, :width]
        moved = [((px - left + 0.5) * scale + x, (py - top + 0.5) * scale + y) for px, py in points]
        detections[name] = DetectedFace(score, np.array(moved))
    return canvas, detections


def given(detections):
    """A detector that returns the known faces (in a fixed order), like an injected detector in any test."""
    return lambda image: list(detections.values())


def restorer_for(network, tmp_path, seed=0):
    torch.manual_seed(seed)
    net = build_network(dict(network))
    checkpoint = tmp_path / f'{network["type"]}.pth'
    torch.save({'params': net.state_dict()}, checkpoint)
    return FaceRestorer(str(checkpoint), network=network, device='cpu')


def warp_back(face):
    """The pasted face warped into the whole output photo through its paste matrix (OpenCV conventions)."""
    shift = np.array([[1.0, 0, -0.5], [0, 1, -0.5], [0, 0, 1]])
    return (shift @ face.paste_matrix @ np.linalg.inv(shift))[:2]


def check_geometry(result, upscale=1):
    """Pasted regions equal the restored faces warped back; every other pixel equals the (upscaled) photo."""
    height, width = result.restored.shape[:2]
    touched = np.zeros((height, width), bool)
    for face in result.restored_faces:
        # The paste matrix undoes the alignment: template points land on the detected landmarks (x upscale).
        size = face.pasted_face.shape[0]
        template = np.c_[FFHQ_TEMPLATE_512 * size / 512, np.ones(5)]
        on_photo = (face.paste_matrix @ template.T)[:2].T
        landmark_error = np.abs(on_photo - face.landmarks * upscale).max()
        assert landmark_error < 0.1 * face.source_side * upscale  # a least-squares fit of 5 points
        composed = face.paste_matrix @ np.diag([size / FACE_SIZE, size / FACE_SIZE, 1]) @ face.matrix
        np.testing.assert_allclose(composed, np.diag([upscale, upscale, 1.0]), atol=1e-9)

        expected = cv2.warpAffine(face.pasted_face.astype(np.float32), warp_back(face), (width, height),
                                  flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        weight = cv2.warpAffine(feathered_mask(size), warp_back(face), (width, height), flags=cv2.INTER_LINEAR)
        inside = weight > 0.999
        assert inside.sum() > 0.3 * (face.source_side * upscale) ** 2  # most of the aligned square
        difference = np.abs(result.restored[inside].astype(float) - np.clip(expected[inside], 0, 255))
        assert difference.max() <= 1.0
        touched |= weight > 0
    assert np.array_equal(result.restored[~touched], result.background[~touched])
    assert (~touched).mean() > 0.5


def test_every_face_is_restored_or_reported_and_pasted_back_exactly(group_photo, tmp_path):
    photo, detections = group_photo
    restorer = restorer_for(TINY_HD, tmp_path)
    result = WholePhotoRestorer(restorer, detector=given(detections)).restore_photo(photo)
    assert result.restored.shape == photo.shape and np.array_equal(result.background, photo)
    status = {name: face.skip_reason for name, face in zip(detections, result.faces)}
    assert [name for name, reason in status.items() if reason is None] == [
        'restored_large', 'restored_medium', 'restored_small']
    assert status['too_large'].startswith('too large') and status['too_small'].startswith('too small')
    assert status['uncertain'].startswith('low detector score 0.500')
    for face in result.restored_faces:
        assert face.input_crop.shape == face.restored.shape == (FACE_SIZE, FACE_SIZE, 3)
        # The restored crop is the network's output for the aligned input.
        assert np.array_equal(face.restored, restorer.restore_image(face.input_crop))
    assert result.faces[2].pasted_face.shape[0] < FACE_SIZE  # a face smaller than 64 px: shrunk before pasting
    check_geometry(result)
    assert result.before_after().shape == (photo.shape[0], 2 * photo.shape[1] + 8, 3)


def test_sr_network_and_upscaled_photo(group_photo, tmp_path):
    """An x4 SR network (16-px input, 64-px face) on a photo enlarged 2x: the crop shrinks, the paste grows."""
    photo, detections = group_photo
    restorer = restorer_for(TINY_SR_X4, tmp_path)
    photo_restorer = WholePhotoRestorer(restorer, detector=given(detections), upscale=2, min_score=0.4,
                                        max_face_enlargement=4, max_face_shrink=16)
    result = photo_restorer.restore_photo(Image.fromarray(photo))
    assert result.restored.shape == (2 * photo.shape[0], 2 * photo.shape[1], 3)
    expected_background = np.array(Image.fromarray(photo).resize((2 * photo.shape[1], 2 * photo.shape[0]),
                                                                  Image.BICUBIC))
    assert np.array_equal(result.background, expected_background)
    for face in result.restored_faces:
        assert face.input_crop.shape == (FACE_SIZE // 4, FACE_SIZE // 4, 3)
        assert face.restored.shape == (FACE_SIZE, FACE_SIZE, 3)
    reasons = [face.skip_reason for face in result.faces]
    assert reasons[-1] is None  # min_score 0.4 keeps the uncertain face
    assert [reason is None for reason in reasons] == [True, True, True, False, False, True]
    check_geometry(result, upscale=2)


def test_a_face_is_never_shrunk_before_a_super_resolution_network(group_photo, tmp_path):
    """An x4 network takes 16-px faces: a face spanning more than 16 px would come out blurrier than the photo's
    own face; it is left as it is, naming its size, the network's input size and what would work."""
    photo, detections = group_photo
    photo_restorer = WholePhotoRestorer(restorer_for(TINY_SR_X4, tmp_path), detector=given(detections), upscale=4,
                                        max_face_enlargement=100, min_face_side=0)
    assert photo_restorer.max_face_shrink == 1.0  # a scale-1 network keeps 2 (see the tests above)
    result = photo_restorer.restore_photo(photo)
    for face in result.faces:
        if face.score >= 0.9 and face.source_side > 16:
            assert face.skip_reason.startswith(f'too large for the network input: the face spans '
                                               f'{face.source_side:.0f} px of the photo but SPARNet takes 16x16 faces')
            assert 'SPARNetHD at 512' in face.skip_reason
    # only the face that fits the 16-px input is restored (enlarged, never shrunk)
    assert [face.source_side <= 16 for face in result.restored_faces] == [True]


def test_restore_command_reports_a_photo_it_cannot_process_and_goes_on(group_photo, tmp_path, monkeypatch, capsys):
    from sfmnet_plugin.tools import restore

    photo, detections = group_photo
    monkeypatch.setattr(restore, 'MtcnnDetector', lambda: given(detections))
    photos = tmp_path / 'photos'
    photos.mkdir()
    Image.fromarray(photo[:3, :5]).save(photos / 'a_sliver.png')
    Image.fromarray(photo).save(photos / 'group.png')
    checkpoint = tmp_path / 'hd.pth'
    torch.save({'params': build_network(dict(TINY_HD)).state_dict()}, checkpoint)
    out = tmp_path / 'out'
    assert restore_main([str(photos), '--output', str(out), '--checkpoint', str(checkpoint), '--arch-json',
                         json.dumps(TINY_HD), '--device', 'cpu']) == 0
    printed, err = capsys.readouterr()
    assert f'{photos / "a_sliver.png"}: the photo is 5x3 px: too small to hold a face' in err
    # every face of the photo is listed: restored, or left as it is and why
    assert f'{photos / "group.png"}: {len(detections)} face(s) detected: ' in printed
    assert sum(line.startswith('  face ') for line in printed.splitlines()) == len(detections)
    assert 'left as it is: low detector score 0.500' in printed
    assert sorted(p.name for p in out.iterdir()) == ['group.png', 'group_before_after.png']


def test_face_restorer_restore_photo_and_bad_settings(group_photo, tmp_path):
    photo, detections = group_photo
    restorer = restorer_for(TINY_HD, tmp_path)
    result = restorer.restore_photo(photo, detector=given(detections), max_face_enlargement=4, max_face_shrink=4)
    assert len(result.restored_faces) == 4  # the 1.0-scale astronaut fits now
    empty = restorer.restore_photo(photo, detector=lambda image: [])
    assert empty.faces == [] and np.array_equal(empty.restored, photo)
    with pytest.raises(InferenceError, match='not divisible'):
        WholePhotoRestorer(restorer_for(TINY_SR_X4, tmp_path), face_size=66)


    class HalvingRestorer:  # a network whose output is not the face size it was given
        options, scale = dict(TINY_HD), 1

        def restore_images(self, images):
            return [image[::2, ::2] for image in images]

    with pytest.raises(InferenceError, match='turned a 64-px face into 32x32, not 64x64'):
        WholePhotoRestorer(HalvingRestorer(), detector=given(detections)).restore_photo(photo)


def test_ffhq_transform_maps_landmarks_onto_the_template():
    template = FFHQ_TEMPLATE_512 * 0.25
    rotated = template @ np.array([[0.8, -0.6], [0.6, 0.8]]).T * 1.7 + [40, 90]  # a similarity of the template
    matrix = ffhq_transform(rotated, 128)
    np.testing.assert_allclose((matrix @ np.c_[rotated, np.ones(5)].T)[:2].T, template, atol=1e-9)
    mask = feathered_mask(64)
    assert mask[32, 32] == pytest.approx(1) and mask[0].max() < 1e-3 and mask[:, 0].max() < 1e-3


# -------------------------------------------------------------------------------------- the command, with MTCNN

def test_restore_command_detects_faces_and_writes_photos(group_photo, tmp_path, capsys):
    pytest.importorskip('facenet_pytorch')
    photo, detections = group_photo
    photos = tmp_path / 'photos'
    photos.mkdir()
    Image.fromarray(photo).save(photos / 'group.png')
    (photos / 'broken.jpg').write_bytes(b'not a photo')
    checkpoint = tmp_path / 'hd.pth'
    torch.manual_seed(0)
    torch.save({'params_ema': build_network(dict(TINY_HD)).state_dict()}, checkpoint)
    out = tmp_path / 'out'
    argv = [str(photos), '--output', str(out), '--checkpoint', str(checkpoint), '--arch-json', json.dumps(TINY_HD),
            '--device', 'cpu', '--save-faces']
    assert restore_main([*argv, '--niqe']) == 0
    captured = capsys.readouterr()
    niqe_rows = (out / 'niqe.csv').read_text().splitlines()
    assert niqe_rows[0] == 'photo,face,niqe_before,niqe_after,note' and len(niqe_rows) >= 3
    assert all('NIQE needs at least two 96x96 blocks' in row for row in niqe_rows[1:])  # 64x64 faces
    assert ': no NIQE: NIQE needs' in captured.out
    assert 'broken.jpg: unreadable image' in captured.err
    assert 'too large' in captured.err  # the 1.0-scale astronaut is found by MTCNN and reported
    # The 3% Grace Hopper (a face box of about 8 px) is below MTCNN's 20-px smallest face; the second pass finds it,
    # and it is listed and counted, not restored.
    assert '; 1 possible face(s) not restored (found only by the more sensitive second pass)' in captured.out
    assert re.search(r'  possible face 5 at \(30\d, 20\d\) \(1\d px, score 0\.9\d\d, second pass\): ', captured.out)
    assert f'{POSSIBLE_FACE}; it would be left anyway: too small' in captured.out
    assert 'faces: 4 restored, 1 left as they are, 1 possible face(s) not restored.' in captured.out
    restored = np.array(Image.open(out / 'group.png'))
    assert restored.shape == photo.shape and not np.array_equal(restored, photo)
    assert (out / 'group_before_after.png').exists() and list(out.glob('group_face*_restored.png'))
    names = {path.name for path in out.iterdir()}
    faces = sorted(name for name in names if name.endswith('_input.png'))
    assert len(faces) >= 2, (names, captured.out)  # MTCNN finds at least the two larger restorable faces
    assert not any(name.endswith('.partial') for name in names)
    assert restore_main([*argv, '--strict']) == 1  # a skipped face makes --strict fail
    capsys.readouterr()
    assert restore_main([str(photos), '--output', str(photos), '--checkpoint', str(checkpoint), '--arch-json',
                         json.dumps(TINY_HD)]) == 1
    assert 'is the input folder' in capsys.readouterr().err
    # a face crop's name (known only after detection) that another photo's output has: the crop is refused, never
    # written over the other photo's restored copy
    other = tmp_path / 'other' / faces[0]
    other.parent.mkdir()
    Image.fromarray(photo[:64, :64]).save(other)
    restore_main([str(photos / 'group.png'), str(other), '--output', str(tmp_path / 'out2'), '--checkpoint',
                  str(checkpoint), '--arch-json', json.dumps(TINY_HD), '--device', 'cpu', '--save-faces'])
    assert f'two outputs of this run have the name {tmp_path / "out2" / faces[0]}' in capsys.readouterr().err
    assert np.array_equal(np.array(Image.open(tmp_path / 'out2' / faces[0])), photo[:64, :64])  # no face: unchanged


def test_restore_command_without_the_detector_package_fails_cleanly(tmp_path, monkeypatch, capsys):
    from sfmnet_plugin.faces.detect import DetectorUnavailable
    from sfmnet_plugin.tools import restore

    def unavailable():
        raise DetectorUnavailable('face detection needs facenet-pytorch==2.6.0')

    monkeypatch.setattr(restore, 'MtcnnDetector', unavailable)
    checkpoint = tmp_path / 'hd.pth'
    torch.save({'params': build_network(dict(TINY_HD)).state_dict()}, checkpoint)
    out = tmp_path / 'out'
    assert restore_main([str(tmp_path), '--output', str(out), '--checkpoint', str(checkpoint), '--arch-json',
                         json.dumps(TINY_HD)]) == 1
    assert capsys.readouterr().err.startswith('sfmnet-restore: error: face detection needs facenet-pytorch')
    assert not out.exists()


# ------------------------------------------------------------------ the second, more sensitive detection pass

def jittered(detections, shift=1.5):
    """The same faces as a second detector sees them: landmarks a little off, another score."""
    return {name: DetectedFace(min(1.0, face.score + 0.01), face.landmarks + shift)
            for name, face in detections.items()}


def test_second_pass_finds_nothing_new_where_both_passes_agree(group_photo, tmp_path):
    photo, detections = group_photo
    restorer = restorer_for(TINY_HD, tmp_path)
    alone = WholePhotoRestorer(restorer, detector=given(detections)).restore_photo(photo)
    # An injected detector has no sensitive pass of its own: no second pass unless one is given.
    assert WholePhotoRestorer(restorer, detector=given(detections)).second_detector is None
    for mode in ('report', 'restore'):
        both = WholePhotoRestorer(restorer, detector=given(detections), second_detector=given(jittered(detections)),
                                  second_pass=mode).restore_photo(photo)
        assert both.possible_faces == [] and len(both.faces) == len(detections)
        assert [face.skip_reason for face in both.faces] == [face.skip_reason for face in alone.faces]
        assert np.array_equal(both.restored, alone.restored)


def test_second_pass_reports_possible_faces_and_restores_them_only_when_asked(group_photo, tmp_path):
    photo, detections = group_photo
    extra = {'missed': DetectedFace(0.95, detections['restored_small'].landmarks + [130, 250]),
             'missed_tiny': DetectedFace(0.62, detections['too_small'].landmarks + [-250, 150])}
    second = given({**jittered(detections), **extra})
    restorer = restorer_for(TINY_HD, tmp_path)
    alone = WholePhotoRestorer(restorer, detector=given(detections)).restore_photo(photo)

    reported = WholePhotoRestorer(restorer, detector=given(detections), second_detector=second).restore_photo(photo)
    assert [face.index for face in reported.faces] == list(range(len(detections)))
    missed, tiny = reported.possible_faces
    assert (missed.index, missed.second_pass, missed.score) == (6, True, 0.95) and tiny.index == 7
    assert missed.skip_reason == POSSIBLE_FACE  # restorable, but only a possible face: left as it is
    assert tiny.skip_reason == f'{POSSIBLE_FACE}; it would be left anyway: low detector score 0.620 (min_score 0.9)'
    assert missed.input_crop is None and np.array_equal(reported.restored, alone.restored)
    # Its face box is where it was put: the small astronaut's, moved.
    np.testing.assert_allclose(missed.box, alone.faces[2].box + [130, 250, 130, 250], atol=1e-6)

    restored = WholePhotoRestorer(restorer, detector=given(detections), second_detector=second,
                                  second_pass='restore').restore_photo(photo)
    assert restored.possible_faces == [] and [face.index for face in restored.faces] == list(range(8))
    assert restored.faces[6].skip_reason is None and restored.faces[6].second_pass
    assert restored.faces[7].skip_reason.startswith('low detector score 0.620')  # the same rules as the first pass
    assert len(restored.restored_faces) == len(alone.restored_faces) + 1
    check_geometry(restored)

    off = WholePhotoRestorer(restorer, detector=given(detections), second_detector=second, second_pass='off')
    assert off.second_detector is None and off.restore_photo(photo).possible_faces == []
    with pytest.raises(InferenceError, match="second_pass must be one of report, restore, off; got 'always'"):
        WholePhotoRestorer(restorer, second_pass='always')


def test_same_face_by_overlap_or_a_centre_inside():
    face = np.array([100.0, 100, 140, 140])
    assert same_face(face, face + 6)  # IoU 0.55
    assert same_face(face, [112, 112, 120, 120])  # a small detection inside the face
    assert not same_face(face, face + [30, 0, 30, 0])  # the neighbour: IoU 0.14, centres outside
    assert not same_face(face, [150, 100, 190, 140])


def test_mtcnn_second_pass_finds_a_face_too_small_for_the_first(astronaut, grace_hopper, smooth_noise, tmp_path):
    """Real detection: an astronaut shrunk to a face box of about 9 px is missed by MTCNN (20-px smallest face) and
    found by the sensitive pass; a photo whose faces both passes find is restored exactly as with one pass."""
    pytest.importorskip('facenet_pytorch')

    def photo(astronaut_scale):
        canvas = smooth_noise(120, 220, seed=3)
        for load, scale, (left, top, right, bottom), (x, y) in (
                (grace_hopper, 0.2, (130, 60, 400, 380), (10, 20)), (astronaut, astronaut_scale, (130, 20, 330, 250),
                                                                      (130, 30))):
            face = Image.fromarray(load()[top:bottom, left:right])
            face = np.array(face.resize((round(face.width * scale), round(face.height * scale)), Image.BICUBIC))
            canvas[y:y + face.shape[0], x:x + face.shape[1]] = face
        return canvas

    restorer = restorer_for(TINY_HD, tmp_path)
    photo_restorer = WholePhotoRestorer(restorer)  # MTCNN, and its sensitive pass second
    tiny = photo_restorer.restore_photo(photo(0.1))
    assert len(tiny.faces) == 1 and len(tiny.possible_faces) == 1
    (possible,) = tiny.possible_faces
    centre = (possible.box[:2] + possible.box[2:]) / 2
    assert 130 < centre[0] < 150 and 30 < centre[1] < 53 and possible.score > 0.9  # on the 20x23 astronaut
    assert possible.skip_reason.startswith(POSSIBLE_FACE)

    agree = photo(0.25)
    both = photo_restorer.restore_photo(agree)
    assert len(both.faces) == 2 and both.possible_faces == []
    one = WholePhotoRestorer(restorer, second_pass='off').restore_photo(agree)
    assert np.array_equal(both.restored, one.restored)


def test_restore_command_second_pass_modes(group_photo, tmp_path, monkeypatch, capsys):
    """The command lists the second pass's possible faces and counts them (report), restores them like the first
    pass's (restore) or runs no second pass (off); --strict is about the faces it left, not the possible ones."""
    from sfmnet_plugin.tools import restore

    photo, detections = group_photo
    missed = DetectedFace(0.97, detections['restored_small'].landmarks + [130, 250])

    class TwoPasses:  # what MtcnnDetector offers: a detector with a sensitive pass of its own
        def __call__(self, image):
            return list(detections.values())

        def sensitive_pass(self):
            return given({**jittered(detections), 'missed': missed})

    monkeypatch.setattr(restore, 'MtcnnDetector', TwoPasses)
    Image.fromarray(photo).save(tmp_path / 'group.png')
    checkpoint = tmp_path / 'hd.pth'
    torch.save({'params': build_network(dict(TINY_HD)).state_dict()}, checkpoint)
    argv = [str(tmp_path / 'group.png'), '--checkpoint', str(checkpoint), '--arch-json', json.dumps(TINY_HD),
            '--device', 'cpu', '--min-score', '0.4', '--max-face-enlargement', '3', '--max-face-shrink', '3',
            '--min-face-side', '8']  # every face restored
    printed = {}
    for mode in ('report', 'restore', 'off'):
        assert restore_main([*argv, '--output', str(tmp_path / mode), '--second-pass', mode, '--strict']) == 0
        printed[mode] = capsys.readouterr().out
    assert ('6 face(s) detected: 6 restored, 0 left as they are; 1 possible face(s) not restored (found only by '
            'the more sensitive second pass)') in printed['report']
    assert re.search(r'\n  possible face 6 at \(409, 327\) \(3\d px, score 0\.970, second pass\): possible face, '
                     r'found only by the more sensitive second pass: not restored '
                     r'\(--second-pass restore restores it\)\n',
                     printed['report'])
    assert 'faces: 6 restored, 0 left as they are, 1 possible face(s) not restored.' in printed['report']
    assert '7 face(s) detected (1 by the second pass): 7 restored, 0 left as they are\n' in printed['restore']
    assert re.search(r'\n  face 6 at \(409, 327\) \(3\d px, score 0\.970, second pass\): restored\n',
                     printed['restore'])
    assert 'faces: 7 restored, 0 left as they are, 0 possible face(s) not restored.' in printed['restore']
    assert '6 face(s) detected: 6 restored, 0 left as they are\n' in printed['off']
    assert 'faces: 6 restored, 0 left as they are, 0 possible face(s) not restored.' in printed['off']
    report, off = (np.array(Image.open(tmp_path / mode / 'group.png')) for mode in ('report', 'off'))
    assert np.array_equal(report, off)  # a possible face is never restored silently
    assert not np.array_equal(np.array(Image.open(tmp_path / 'restore' / 'group.png')), report)
