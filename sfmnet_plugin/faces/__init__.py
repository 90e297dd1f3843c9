"""Real face photos available offline, aligned into 128x128 crops (the demo's data).

:func:`build_face_set` gathers the photos (:mod:`.sources`), detects faces with their five
landmarks (MTCNN from ``facenet-pytorch``, whose weights ship inside its wheel) and aligns each
face by a similarity transform onto a fixed five-point template (:mod:`.align`).
"""
from sfmnet_plugin.faces.align import FACE_TEMPLATE_128, align_face, similarity_transform
from sfmnet_plugin.faces.build import build_face_set
from sfmnet_plugin.faces.sources import PhotoSource, gather_photos

__all__ = ['FACE_TEMPLATE_128', 'PhotoSource', 'align_face', 'build_face_set', 'gather_photos',
           'similarity_transform']
