"""Option keys are checked against a schema before BasicSR builds anything."""
import copy
import glob
from os import path as osp

import pytest

from sfmnet_plugin.config.option_files import load_merged_options
from sfmnet_plugin.config.option_schema import OptionKeyError, option_key_problems, validate_options
from sfmnet_plugin.launch.cli import parse_command_line

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))  # parametrizes at import time
OPTION_FILES = sorted(glob.glob(osp.join(REPO_ROOT, 'options', '*.yml')))
STAGE_1 = osp.join(REPO_ROOT, 'options', 'train_SFMNet_x8.yml')


@pytest.mark.parametrize('path', OPTION_FILES, ids=osp.basename)
def test_every_shipped_option_file_validates(path):
    assert option_key_problems(load_merged_options(path)) == []


# Misspellings, each with its place and the key it should have been.
MISSPELLINGS = [
    ((), 'manual_sed', 'manual_seed', 'manual_sed'),
    ((), 'trian', 'train', 'trian'),
    (('train',), 'grad_clip_nrom', 'grad_clip_norm', 'train.grad_clip_nrom'),
    (('train',), 'mixed_precison', 'mixed_precision', 'train.mixed_precison'),
    (('datasets', 'train'), 'use_hflp', 'use_hflip', 'datasets.train.use_hflp'),
    (('network_g',), 'num_fet', 'num_feat', 'network_g.num_fet'),
    (('train', 'pixel_opt'), 'los_weight', 'loss_weight', 'train.pixel_opt.los_weight'),
    (('train', 'optim_g'), 'bettas', 'betas', 'train.optim_g.bettas'),
    (('train', 'scheduler'), 'milestone', 'milestones', 'train.scheduler.milestone'),
    (('val', 'metrics', 'psnr'), 'protocl', 'protocol', 'val.metrics.psnr.protocl'),
    (('val',), 'val_frq', 'val_freq', 'val.val_frq'),
    (('logger',), 'print_frq', 'print_freq', 'logger.print_frq'),
    (('path',), 'pretrain_netwrok_g', 'pretrain_network_g', 'path.pretrain_netwrok_g'),
]


@pytest.mark.parametrize('section,key,closest,place', MISSPELLINGS, ids=[m[3] for m in MISSPELLINGS])
def test_a_misspelt_key_is_an_error_naming_it_its_place_and_the_closest_key(section, key, closest, place):
    opt = copy.deepcopy(load_merged_options(STAGE_1))
    target = opt
    for name in section:
        target = target[name]
    target[key] = 1
    with pytest.raises(OptionKeyError) as error:
        validate_options(opt, 'x.yml')
    message = str(error.value)
    assert f'unknown option {place}' in message and repr(closest) in message and message.startswith('x.yml: ')


def test_unregistered_types_name_the_closest_registered_one():
    opt = copy.deepcopy(load_merged_options(STAGE_1))
    opt['network_g']['type'] = 'SFMnet'
    opt['model_type'] = 'SFMNetModle'
    problems = option_key_problems(opt)
    assert any("network_g.type: 'SFMnet'" in p and "'SFMNet'" in p for p in problems)
    assert any("model_type: 'SFMNetModle'" in p and "'SFMNetModel'" in p for p in problems)


def test_new_architectures_are_checked_from_their_signature():
    from basicsr.utils.registry import ARCH_REGISTRY
    from torch import nn

    class TinyNewNet(nn.Module):
        def __init__(self, upscale=2, width=4):
            super().__init__()

    ARCH_REGISTRY._obj_map['TinyNewNet'] = TinyNewNet
    try:
        opt = copy.deepcopy(load_merged_options(STAGE_1))
        opt['network_g'] = {'type': 'TinyNewNet', 'upscale': 8, 'width': 3}
        assert option_key_problems(opt) == []
        opt['network_g']['widht'] = 3
        assert any('network_g.widht' in p and "'width'" in p for p in option_key_problems(opt))
    finally:
        del ARCH_REGISTRY._obj_map['TinyNewNet']


def test_third_party_models_keep_their_own_keys():
    from basicsr.models.sr_model import SRModel
    from basicsr.utils.registry import MODEL_REGISTRY

    class ThirdPartyModel(SRModel):
        pass

    MODEL_REGISTRY._obj_map['ThirdPartyModel'] = ThirdPartyModel
    try:
        opt = copy.deepcopy(load_merged_options(STAGE_1))
        opt['model_type'] = 'ThirdPartyModel'
        opt['train']['its_own_key'] = 1
        opt['network_g']['num_fet'] = 1  # component sections are still checked
        assert [p for p in option_key_problems(opt) if 'its_own_key' in p] == []
        assert any('num_fet' in p for p in option_key_problems(opt))
    finally:
        del MODEL_REGISTRY._obj_map['ThirdPartyModel']


def test_force_yml_entries_are_checked_too(tmp_path, write_yaml):
    path = str(write_yaml(tmp_path / 'x.yml', load_merged_options(STAGE_1)))
    request = parse_command_line('train', ['-opt', path, '--force_yml', 'train:total_iter=6'])
    validate_options(request.options, path)
    request = parse_command_line('train', ['-opt', path, '--force_yml', 'train:totl_iter=6'])
    with pytest.raises(OptionKeyError, match='train.totl_iter'):
        validate_options(request.options, path)


def test_the_launcher_stops_on_a_misspelt_key_before_creating_anything(tmp_path, capsys, write_yaml):
    from sfmnet_plugin.launch.cli import main

    opt = load_merged_options(STAGE_1)
    opt['train']['grad_clip_nrom'] = 1.0
    path = str(write_yaml(tmp_path / 'typo.yml', opt))
    with pytest.raises(SystemExit) as exit_info:
        main('train', root_path=str(tmp_path / 'root'), argv=['-opt', path])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and 'train.grad_clip_nrom' in err and "'grad_clip_norm'" in err
    assert not (tmp_path / 'root').exists()


def test_the_plugins_dataset_declares_every_key_it_reads():
    """The schema takes PairedFaceDataset's keys from its ``option_keys``: a key read but not declared would be
    rejected as unknown."""
    import inspect
    import re

    from sfmnet_plugin.config.option_schema import LOADER_KEYS
    from sfmnet_plugin.data import face_augment, paired_face_dataset

    source = inspect.getsource(paired_face_dataset) + inspect.getsource(face_augment)
    read = set(re.findall(r"\bopt(?:\.get\(|\[)'(\w+)'", source))
    assert read and read <= paired_face_dataset.PairedFaceDataset.option_keys | LOADER_KEYS


def test_the_plugins_models_keys_are_in_the_table():
    """Every train/val/path key the plugin's models read is a valid key of the model that reads it."""
    import inspect
    import re

    from basicsr.utils.registry import MODEL_REGISTRY

    from sfmnet_plugin.config.option_schema import _model_keys

    for name in ('SFMNetModel', 'SFMNetGANModel'):
        model_class = MODEL_REGISTRY.get(name)
        keys = _model_keys(model_class)
        assert keys is not None, name
        for cls in model_class.__mro__:
            if not cls.__module__.startswith('sfmnet_plugin.'):
                continue
            source = inspect.getsource(cls)
            for section in ('train', 'val', 'path'):
                read = set(re.findall(rf"{section}_opt(?:\.get\(|\[)'(\w+)'", source))
                read |= set(re.findall(rf"opt\['{section}'\](?:\.get\(|\[)'(\w+)'", source))
                assert read <= keys[section], (name, cls.__name__, section, read - keys[section])


def test_option_keys_are_declared_once_on_the_plugins_classes():
    """The plugin's models and datasets carry their keys as a class attribute; the schema's tables hold only
    BasicSR's own classes, which cannot carry one."""
    from basicsr.utils.registry import DATASET_REGISTRY, MODEL_REGISTRY

    from sfmnet_plugin.config import option_schema

    for registry in (MODEL_REGISTRY, DATASET_REGISTRY):
        ours = [cls for _, cls in registry if cls.__module__.startswith('sfmnet_plugin.')]
        assert ours and all('option_keys' in vars(cls) for cls in ours), registry._name
        names = {cls.__name__ for cls in ours}
        assert not names & (set(option_schema.BASICSR_MODEL_KEYS) | set(option_schema.BASICSR_DATASET_KEYS))
    assert not [name for name in vars(option_schema) if name.startswith('register_')]


def test_a_model_of_your_own_is_checked_once_it_declares_its_keys():
    from basicsr.utils.registry import MODEL_REGISTRY

    from sfmnet_plugin.models.sfmnet_model import SFMNetModel

    class DeclaringModel(SFMNetModel):
        option_keys = {'train': {'its_own_key'}}

    MODEL_REGISTRY._obj_map['DeclaringModel'] = DeclaringModel
    try:
        opt = copy.deepcopy(load_merged_options(STAGE_1))
        opt['model_type'] = 'DeclaringModel'
        opt['train']['its_own_key'] = 1
        opt['train']['frequency_opt']['loss_weight'] = 0.01  # a parent's section, still valid
        assert option_key_problems(opt) == []
        opt['train']['its_own_kye'] = 1
        assert any("train.its_own_kye" in p and "'its_own_key'" in p for p in option_key_problems(opt))
    finally:
        del MODEL_REGISTRY._obj_map['DeclaringModel']
