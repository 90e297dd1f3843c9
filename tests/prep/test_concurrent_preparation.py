"""Two preparations of one output at once: the second is refused naming the first's PID, the first finishes intact.

The run that builds ``<out>.partial`` holds the run lock (the training's ``FolderLock``) on that folder; a second
run used to delete it as "left over from an interrupted run" and the first then reported success over a corrupt
LMDB.
"""
import os

import numpy as np
from PIL import Image

from sfmnet_cli import folder_to_lmdb, verify_lmdb
from sfmnet_plugin.data.lmdb_reader import check_lmdb
from sfmnet_plugin.prep import lmdb_writer


def test_a_second_preparation_of_the_same_output_is_refused_and_the_first_stays_intact(tmp_path, monkeypatch,
                                                                                         capsys):
    rng = np.random.default_rng(0)
    (tmp_path / 'src').mkdir()
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp_path / 'src' / f'{i}.png')
    out = tmp_path / 'out.lmdb'
    second = {}
    original_put = lmdb_writer.LmdbWriter.put

    def put_then_start_a_second_run(self, *args):
        if not second:  # the first image is queued: the first run is building out.lmdb.partial now
            for extra in ([], ['--overwrite']):
                # a second run: in this process, but with its own descriptors, which flock treats as another
                # process's (a separate process takes ~10x longer to start on a loaded machine)
                capsys.readouterr()
                second[tuple(extra)] = folder_to_lmdb.main([str(tmp_path / 'src'), str(out), '--workers', '1',
                                                            *extra]), capsys.readouterr().err
        return original_put(self, *args)

    monkeypatch.setattr(lmdb_writer.LmdbWriter, 'put', put_then_start_a_second_run)
    assert folder_to_lmdb.main([str(tmp_path / 'src'), str(out), '--workers', '1']) == 0
    assert len(second) == 2
    for status, err in second.values():
        assert status == 2, err
        err = err.strip()
        assert err.count('\n') == 0 and 'Traceback' not in err, err
        assert f'{out}.partial is in use by a running process (PID {os.getpid()})' in err, err
    monkeypatch.undo()
    # the owner marker (this tool made it) and no lock file left
    assert sorted(os.listdir(out)) == ['.sfmnet_output', 'data.mdb', 'lock.mdb', 'meta_info.txt']
    assert not (tmp_path / 'out.lmdb.partial').exists()
    assert check_lmdb(str(out), 1) == []  # every listed key is stored and decodes
    capsys.readouterr()
    assert verify_lmdb.main([str(out)]) == 0
    assert '6 images' in capsys.readouterr().out
