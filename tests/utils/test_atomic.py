"""The one atomic-write mechanism: the target is absent, old or complete, and nothing is left behind."""
import pytest

from sfmnet_plugin.utils.atomic import atomic_torch_save, atomic_write, atomic_write_bytes


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary_one(tmp_path):
    target = tmp_path / 'table.md'
    atomic_write_bytes(target, b'old')

    def half_written(temporary):
        with open(temporary, 'wb') as f:
            f.write(b'ne')
        raise KeyboardInterrupt  # Ctrl-C in the middle of writing

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, half_written)
    assert target.read_bytes() == b'old' and sorted(p.name for p in tmp_path.iterdir()) == ['table.md']
    atomic_write(target, lambda temporary: open(temporary, 'wb').close(), fsync=True)
    assert target.read_bytes() == b''


def test_a_missing_folder_is_an_error_unless_asked_to_make_it(tmp_path):
    import torch

    from sfmnet_plugin.utils.output_paths import OutputWriteError

    # said by the writer itself, in the same words for every format (torch's and safetensors' differ)
    with pytest.raises(OutputWriteError, match=f'cannot write .*a.pth: {tmp_path / "missing"} does not exist; '
                                               'create the folder or choose another output path'):
        atomic_torch_save({'x': torch.ones(1)}, tmp_path / 'missing' / 'a.pth')
    assert not (tmp_path / 'missing').exists()
    atomic_write_bytes(tmp_path / 'made' / 'a.bin', b'1', make_folder=True)
    assert (tmp_path / 'made' / 'a.bin').read_bytes() == b'1'


def test_links_at_the_target_or_the_temporary_name_are_never_written_through(tmp_path):
    outside = tmp_path / 'outside.txt'
    outside.write_bytes(b'user data')
    folder = tmp_path / 'out'
    folder.mkdir()
    (folder / 'table.md').symlink_to(outside)
    (folder / 'report.md.partial').symlink_to(outside)
    atomic_write_bytes(folder / 'table.md', b'table')
    atomic_write_bytes(folder / 'report.md', b'report')
    assert outside.read_bytes() == b'user data'
    assert not (folder / 'table.md').is_symlink() and (folder / 'table.md').read_bytes() == b'table'
    assert (folder / 'report.md').read_bytes() == b'report'
    assert sorted(p.name for p in folder.iterdir()) == ['report.md', 'table.md']
