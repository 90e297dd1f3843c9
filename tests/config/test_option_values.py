"""Option values are type- and range-checked, names that become folders are plain names: one line per
problem, naming the option, the value and what is expected."""
import pytest

from sfmnet_plugin.config.option_values import option_value_problems


@pytest.fixture(scope='session')
def options(set_dotted):
    def options(**sections):
        base = {'name': 'run', 'num_gpu': 0, 'datasets': {'train': {'name': 'faces', 'batch_size_per_gpu': 2}},
                'train': {'total_iter': 10, 'optim_g': {'type': 'Adam', 'lr': 2.0e-4}},
                'logger': {'print_freq': 1, 'save_checkpoint_freq': 5}, 'val': {'val_freq': 5}}
        return set_dotted(base, sections)

    return options


def test_sound_options_have_no_problem(options):
    assert option_value_problems(options()) == []
    assert option_value_problems(options(train__total_iter=3.0e5, val__val_freq=5.0e3, num_gpu='auto')) == []


@pytest.mark.parametrize('override, expected', [
    ({'train__optim_g__lr': '1e9'}, "train.optim_g.lr: '1e9' is text, not a number (YAML reads 1e9 without a dot as "
                                    'text: write 1.0e9)'),
    ({'train__optim_g__lr': 0}, 'train.optim_g.lr: 0 must be > 0'),
    ({'train__optim_g__lr': 'fast'}, "train.optim_g.lr: 'fast' is not a number"),
    ({'datasets__train__batch_size_per_gpu': 0}, 'datasets.train.batch_size_per_gpu: 0 must be >= 1'),
    ({'datasets__train__batch_size_per_gpu': -4}, 'datasets.train.batch_size_per_gpu: -4 must be >= 1'),
    ({'datasets__train__dataset_enlarge_ratio': 0}, 'datasets.train.dataset_enlarge_ratio: 0 must be >= 1'),
    ({'logger__print_freq': 0}, 'logger.print_freq: 0 must be >= 1'),
    ({'logger__save_checkpoint_freq': '5e3'}, "logger.save_checkpoint_freq: '5e3' is text, not a number"),
    ({'train__total_iter': 0}, 'train.total_iter: 0 must be >= 1: the run would train zero iterations'),
    ({'train__total_iter': -5}, 'train.total_iter: -5 must be >= 1: the run would train zero iterations'),
    ({'val__val_freq': 2.5}, 'val.val_freq: 2.5 is not a whole number'),
    ({'num_gpu': 64}, 'num_gpu: 64 but this machine has'),
    ({'num_gpu': -1}, "num_gpu: -1 must be 'auto' or a whole number >= 0"),
    ({'name': '../../victim_dir'}, "name: '../../victim_dir' is not a plain name"),
    ({'name': '/tmp/x'}, "name: '/tmp/x' is not a plain name"),
    ({'datasets__train__name': '../../../../x'}, "datasets.train.name: '../../../../x' is not a plain name"),
    ({'val__suffix': '../x'}, "val.suffix: '../x' is not a plain name"),
])
def test_a_wrong_value_is_one_problem_naming_it(override, expected, options):
    problems = option_value_problems(options(**override))
    assert len(problems) == 1 and problems[0].startswith(expected), problems
