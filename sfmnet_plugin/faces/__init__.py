"""Faces in photos: detection with five landmarks (:mod:`.detect`: MTCNN, weights inside the
``facenet-pytorch`` wheel) and alignment by a similarity transform onto a five-point template (:mod:`.align`).
"""
from sfmnet_plugin.faces.align import FACE_TEMPLATE_128, Jitter, align_face, face_transform, similarity_transform
from sfmnet_plugin.faces.detect import DetectedFace, DetectorUnavailable, MtcnnDetector

__all__ = ['FACE_TEMPLATE_128', 'DetectedFace', 'DetectorUnavailable', 'Jitter', 'MtcnnDetector', 'align_face',
           'face_transform', 'similarity_transform']
