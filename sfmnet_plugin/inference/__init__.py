"""Inference: restore faces with any trained or official network of the family.

* :class:`FaceRestorer` (:mod:`.face_restorer`) loads a checkpoint into any registered network and restores
  LR faces (tensors or RGB arrays), in fp32/bf16/fp16, eager, compiled or through ONNX Runtime.
* :class:`WholePhotoRestorer` (:mod:`.whole_photo`) wraps a ``FaceRestorer`` and a detector: every face of a
  photo aligned, restored and pasted back (GFPGAN's shape: the photo restorer uses the face restorer).
* :mod:`.onnx` exports a network to ONNX and runs an exported file.
* :mod:`.network_options` checks ``network_g`` options and the scale factor.
"""
from sfmnet_plugin.inference.face_restorer import FaceRestorer
from sfmnet_plugin.inference.network_options import InferenceError
from sfmnet_plugin.inference.whole_photo import WholePhotoRestorer

__all__ = ['FaceRestorer', 'InferenceError', 'WholePhotoRestorer']
