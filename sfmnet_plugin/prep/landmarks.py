"""``--landmarks 68``: dlib's 68 landmarks of every prepared HR face, stored beside its LMDB.

The landmarks are found on the HR face as it is stored (after cropping and resizing), with the box and
sub-pixel predictor of the landmark metric (:mod:`sfmnet_plugin.metrics.face_models`: dlib's HOG face detector
and ``shape_predictor_68_face_landmarks.dat`` of the ``face-metrics`` extra). A face where the detector finds
no face gets no landmarks: it is listed in ``landmarks_68_missing.txt`` and reported, never given made-up points
(DIC's heatmap loss would then teach wrong landmarks). The file format is :mod:`sfmnet_plugin.data.face_landmarks`.
"""
import io
from os import path as osp

import numpy as np
from PIL import Image

from sfmnet_plugin.data.face_landmarks import check_points, missing_landmark_file_name, write_landmark_files
from sfmnet_plugin.data.lmdb_reader import read_meta_info
from sfmnet_plugin.metrics import face_models
from sfmnet_plugin.utils.parallel import parallel_imap

_SHOWN = 5


def check_landmark_models(points):
    """Fail before any work when dlib or its 68-point predictor is missing (one line naming both)."""
    check_points(points, '--landmarks')
    try:
        face_models.dlib_models()
    except face_models.FaceMetricsUnavailable as error:
        raise ValueError(f'--landmarks {points} needs dlib\'s 68-point predictor '
                         f'(shape_predictor_68_face_landmarks.dat): {error}') from error


def face_landmarks(rgb, points=68):
    """``points x 2`` landmarks of the face dlib detects in ``rgb``, or None when it detects none."""
    box = face_models.detected_face_box(rgb)
    return None if box is None else face_models.landmarks(rgb, box, points)


def _landmarks_of_png(task):
    content, points = task
    return face_landmarks(np.asarray(Image.open(io.BytesIO(content)).convert('RGB')), points)


def add_lmdb_landmarks(lmdb_path, points, workers=1):
    """Find the landmarks of every face in ``lmdb_path`` and write the landmark files into it; returns the keys
    without landmarks (also printed)."""
    import lmdb

    keys = list(read_meta_info(lmdb_path))
    env = lmdb.open(lmdb_path, readonly=True, lock=False, readahead=False)
    try:
        with env.begin() as txn:
            contents = [bytes(txn.get(key.encode('ascii'))) for key in keys]
    finally:
        env.close()
    found, missing = {}, []
    for key, result in zip(keys, parallel_imap(_landmarks_of_png, [(c, points) for c in contents], workers)):
        if result is None:
            missing.append(key)
        else:
            found[key] = result
    write_landmark_files(lmdb_path, points, found, missing)
    name = osp.basename(lmdb_path.rstrip('/')).removesuffix('.partial')
    print(f'{name}: {points} landmarks for {len(found)} of {len(keys)} faces')
    if missing:
        shown = ', '.join(missing[:_SHOWN]) + (f' and {len(missing) - _SHOWN} more' if len(missing) > _SHOWN else '')
        print(f'{name}: dlib found no face in {len(missing)} faces ({shown}); they have no landmarks and are listed '
              f'in {missing_landmark_file_name(points)} (PairedFaceDataset refuses them unless '
              'skip_faces_without_landmarks)')
    return missing
