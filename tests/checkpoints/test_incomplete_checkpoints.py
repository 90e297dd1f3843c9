"""A damaged official checkpoint is refused with a CheckpointConversionError naming the missing key, for every network
recognised by its keys, whichever key it sizes the network by is missing (without one of its marker keys it is not
recognised at all): never a KeyError (converting then checks every name and shape: the convert tests)."""
import pytest
import torch

from sfmnet_plugin.checkpoints import CheckpointConversionError, ctcnet, dic, sisn, ufsrnet, wfen

RECOGNISERS = [(ctcnet, 'tests/data/ctcnet_official_keys.txt'), (dic, 'tests/data/dic_official_keys.txt'),
               (sisn, 'tests/data/sisn_official_keys.txt'), (ufsrnet, 'tests/data/ufsrnet_official_keys.txt'),
               (wfen, 'tests/data/wfen_official_keys.txt')]


class ReadKeys(dict):
    """A state dict that remembers which keys were read by indexing (what a recogniser sizes the network by)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.read = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)


@pytest.mark.parametrize('module, listing', RECOGNISERS, ids=[module.__name__.rsplit('.', 1)[1]
                                                               for module, _ in RECOGNISERS])
def test_recognising_a_state_dict_missing_a_key_it_reads(module, listing, official_key_listing):
    """Every key the recogniser reads, and one it does not, removed in turn (every key: the same, only slower)."""
    layout = official_key_listing(listing)
    full = ReadKeys({key: torch.empty(shape, dtype=dtype, device='meta') for key, (shape, dtype) in layout.items()})
    assert module.recognise(full) is not None and full.read
    unread = next(key for key in layout if key not in full.read)
    refused = []
    for key in [*sorted(full.read), unread]:
        try:
            module.recognise({name: tensor for name, tensor in full.items() if name != key})
        except CheckpointConversionError as error:
            assert repr(key) in str(error) and 'missing key' in str(error), (key, str(error))
            refused.append(key)
    if module is ctcnet:  # sized by head.weight, which is not one of its marker keys
        assert refused == ['head.weight']
