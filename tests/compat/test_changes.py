"""The one mechanism that changes BasicSR names: a name has one replacement, and a run puts BasicSR's own back."""
import basicsr.train
import basicsr.utils.options
import pytest

from sfmnet_plugin.compat.changes import NameChangedTwiceError, RunChanges


def test_a_run_restores_every_name_and_refuses_a_second_replacement():
    own = basicsr.train.load_resume_state
    changes = RunChanges()
    changes.replace(basicsr.train, 'load_resume_state', print)
    assert basicsr.train.load_resume_state is print and changes.names == ['basicsr.train.load_resume_state']
    with pytest.raises(NameChangedTwiceError, match='basicsr.train.load_resume_state is changed already'):
        changes.replace(basicsr.train, 'load_resume_state', repr)
    with pytest.raises(NameChangedTwiceError, match='basicsr.utils.options.ordered_yaml'):  # changed at import
        changes.replace(basicsr.utils.options, 'ordered_yaml', repr)
    changes.restore()
    assert basicsr.train.load_resume_state is own and changes.names == []
