"""Checkpoint recognition and conversion: official checkpoints of every network the plugin re-implements.

One entry point for every family, which ``sfmnet-convert-official``, :mod:`sfmnet_plugin.inference` (and so
``sfmnet-infer``) and other people's code call::

    from sfmnet_plugin.checkpoints import convert_official_checkpoint, recognise_official_checkpoint

    state_dict, found = convert_official_checkpoint(torch.load(path, weights_only=True))
    print(found.name)                       # e.g. 'SPARNet', 'SFMNet generator'
    net = build_network(found.network_options)
    net.load_state_dict(state_dict, strict=True)

Official SFMNet checkpoints are renamed to the plugin's readable names (:mod:`.sfmnet`); SPARNet-family, WFEN,
CTCNet, UFSRNet, SISN and DIC ones keep their names, which are the plugin's, and are checked (:mod:`.sparnet`,
:mod:`.wfen`, :mod:`.ctcnet`, :mod:`.ufsrnet`, :mod:`.sisn`, :mod:`.dic`; SISN's ``module.`` prefixes, which every
official SISN checkpoint has, are removed; DIC's training checkpoints hold the state dict under ``state_dict``).
Either way every key and shape is checked, and a wrong checkpoint raises :class:`CheckpointConversionError` naming the
first mismatched key.

:mod:`.io` reads and writes network files, ``.safetensors`` or weights-only ``.pth``, with the options that build
the network; :mod:`.options` reads those options back off a checkpoint (or SFMNet's off its keys and shapes).
"""
from collections.abc import Mapping
from typing import Any

import torch

from sfmnet_plugin.checkpoints import ctcnet, dic, sfmnet, sisn, sparnet, ufsrnet, wfen
from sfmnet_plugin.checkpoints.conversion import (
    CheckpointConversionError,
    OfficialNetwork,
    format_keys,
    strip_module_prefix,
    unwrap_checkpoint,
)

KNOWN_NETWORKS = ('SFMNet generator', 'SFMNet LightCNN-9 discriminators', *sparnet.PUBLISHED_NETWORKS,
                  *wfen.PUBLISHED_NETWORKS, ctcnet.NAME, ufsrnet.NAME, *sisn.PUBLISHED_NETWORKS,
                  *dic.PUBLISHED_NETWORKS)


def recognise_official_checkpoint(state_dict: Mapping[str, Any],
                                 keep_unused_attention: bool = True) -> OfficialNetwork | None:
    """The :class:`OfficialNetwork` whose official layout ``state_dict`` has (``module.`` prefixes allowed), or None.

    Recognition looks at the key names (and, for SPARNet, reads the options off the shapes); it does not check
    every key, which :meth:`OfficialNetwork.convert` does. ``keep_unused_attention`` is the SFMNet conversion option.
    """
    state_dict = strip_module_prefix(state_dict)
    return (sfmnet.recognise(state_dict, keep_unused_attention=keep_unused_attention)
            or sparnet.recognise(state_dict)
            or wfen.recognise(state_dict)
            or ctcnet.recognise(state_dict)
            or ufsrnet.recognise(state_dict)
            or sisn.recognise(state_dict)
            or dic.recognise(state_dict))


def convert_official_checkpoint(state_dict: Mapping[str, Any],
                                keep_unused_attention: bool = True) -> tuple[dict, OfficialNetwork]:
    """Official state dict -> ``(plugin state dict, OfficialNetwork found)``.

    Raises :class:`CheckpointConversionError` when the keys belong to no known network or do not match the
    recognised one exactly (the message names the first mismatched key).
    """
    if not isinstance(state_dict, dict) or not all(isinstance(t, torch.Tensor) for t in state_dict.values()):
        raise CheckpointConversionError('the checkpoint holds no state dict (a mapping of parameter names to tensors).')
    found = recognise_official_checkpoint(state_dict, keep_unused_attention=keep_unused_attention)
    if found is None:
        first_keys = ', '.join(list(strip_module_prefix(state_dict))[:3]) or 'none'
        raise CheckpointConversionError(f'Not an official checkpoint of a known network ({", ".join(KNOWN_NETWORKS)}); '
                                        f'its first keys: {first_keys}.')
    return found.convert(strip_module_prefix(state_dict)), found


__all__ = ['CheckpointConversionError', 'OfficialNetwork', 'KNOWN_NETWORKS', 'convert_official_checkpoint',
           'format_keys', 'recognise_official_checkpoint', 'strip_module_prefix', 'unwrap_checkpoint']
