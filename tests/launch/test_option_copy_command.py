"""The option copy saved with a run names the command the user ran, not the deleted temporary merged file."""
import sys

import basicsr.train as basicsr_train

from sfmnet_plugin.launch.pipeline import command_line, option_copy_naming_the_user_command


def test_the_saved_copy_names_the_users_command(tmp_path):
    merged = tmp_path / 'tmp_sfmnet_options' / 'train_x8.yml'
    merged.parent.mkdir()
    merged.write_text('name: x8\n')
    experiment = tmp_path / 'experiment'
    experiment.mkdir()
    user = ['sfmnet-train', '-opt', 'options/train_x8.yml', '--force_yml', 'train:total_iter=10']
    upstream = basicsr_train.copy_opt_file
    with option_copy_naming_the_user_command(user), command_line(['train.py', '-opt', str(merged)]):
        basicsr_train.copy_opt_file(str(merged), str(experiment))
        assert sys.argv == ['train.py', '-opt', str(merged)]  # BasicSR still parses its own command line
    assert basicsr_train.copy_opt_file is upstream
    saved = (experiment / 'train_x8.yml').read_text()
    assert f'# CMD:\n# {" ".join(user)}\n' in saved and str(merged) not in saved and 'name: x8' in saved
