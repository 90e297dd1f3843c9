"""A damaged official checkpoint is refused with a CheckpointConversionError naming the missing key, for every network
recognised by its keys, whichever key is missing: recognising never fails with a KeyError from reading the network's
size off a key that is not there (converting then checks every name and shape: the convert tests)."""
import pytest
import torch

from sfmnet_plugin.checkpoints import CheckpointConversionError, ctcnet, dic, sisn, ufsrnet, wfen

RECOGNISERS = [(ctcnet, 'tests/data/ctcnet_official_keys.txt'), (dic, 'tests/data/dic_official_keys.txt'),
               (sisn, 'tests/data/sisn_official_keys.txt'), (ufsrnet, 'tests/data/ufsrnet_official_keys.txt'),
               (wfen, 'tests/data/wfen_official_keys.txt')]


@pytest.mark.parametrize('module, listing', RECOGNISERS, ids=[module.__name__.rsplit('.', 1)[1]
                                                               for module, _ in RECOGNISERS])
def test_recognising_a_state_dict_missing_any_one_key(module, listing, official_key_listing):
    layout = official_key_listing(listing)
    full = {key: torch.empty(shape, dtype=dtype, device='meta') for key, (shape, dtype) in layout.items()}
    assert module.recognise(full) is not None
    refused = []
    for key in layout:
        try:
            module.recognise({name: tensor for name, tensor in full.items() if name != key})
        except CheckpointConversionError as error:
            assert repr(key) in str(error) and 'missing key' in str(error), (key, str(error))
            refused.append(key)
    if module is ctcnet:  # sized by head.weight, which is not one of its marker keys
        assert refused == ['head.weight']
