"""`anomaly_seg data`: the synthetic and check actions through the real CLI entry point."""
from __future__ import annotations

import pytest

from anomaly_seg_ros.cli import main


def test_data_help_explains_the_actions(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(['data', '--help'])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert 'synthetic' in out and 'check' in out


def test_data_synthetic_help_names_the_flags(capsys):
    with pytest.raises(SystemExit):
        main(['data', 'synthetic', '--help'])
    out = capsys.readouterr().out
    for flag in ('--out', '--train', '--val', '--anomaly-test', '--size', '--seed'):
        assert flag in out


def test_data_synthetic_writes_a_dataset_and_reports_speed(tmp_path, capsys):
    out_dir = tmp_path / 'synth'
    code = main(['data', 'synthetic', '--out', str(out_dir), '--train', '1', '--val', '1', '--anomaly-test', '1',
                 '--size', '96x48', '--seed', '3', '--quiet'])
    assert code == 0
    out = capsys.readouterr().out
    assert 'wrote 3 frames' in out and 'frames/s' in out and 'per CPU second' in out  # the generator's speed
    assert (out_dir / 'dataset.yaml').is_file()
    assert main(['data', 'check', '--dataset', 'synthetic', '--root', str(out_dir), '--quiet']) == 0
    report = capsys.readouterr().out
    assert 'split train' in report and 'split anomaly_test' in report and 'car' in report


def test_data_synthetic_rejects_a_malformed_size(capsys):
    with pytest.raises(SystemExit):
        main(['data', 'synthetic', '--out', 'x', '--size', '512by256'])
    assert 'WIDTHxHEIGHT' in capsys.readouterr().err


def test_data_check_stops_with_one_line_naming_the_missing_file(tmp_path, capsys):
    (tmp_path / 'images').mkdir()
    (tmp_path / 'labels').mkdir()
    (tmp_path / 'images' / 'a.png').write_bytes(b'')
    assert main(['data', 'check', '--dataset', 'folder', '--root', str(tmp_path), '--quiet']) == 2
    err = capsys.readouterr().err
    assert err.startswith('anomaly_seg data: error: label file missing for image') and 'a.png' in err


def test_data_paste_writes_a_folder_set_that_eval_reads_and_refuses_a_test_split(tmp_path, object_bank_root, capsys):
    from anomaly_seg_ros.data import open_dataset
    root = tmp_path / 'synth'
    assert main(['data', 'synthetic', '--out', str(root), '--train', '0', '--val', '2', '--anomaly-test', '0',
                 '--size', '128x64', '--quiet']) == 0
    out = tmp_path / 'pasted'
    assert main(['data', 'paste', '--dataset', 'synthetic', '--root', str(root), '--objects', str(object_bank_root),
                 '--out', str(out), '--sheet', '2', '--quiet']) == 0
    printed = capsys.readouterr().out
    assert '--dataset folder' in printed and 'held_out' in printed and (out / 'sheet.jpg').is_file()
    pasted = open_dataset('folder', out)
    assert len(pasted) == 2 and any((pasted[i].anomaly == 1).any() for i in range(2))
    with pytest.raises(SystemExit):
        main(['data', 'paste', '--dataset', 'camvid', '--root', str(root), '--split', 'test',
              '--objects', str(object_bank_root), '--out', str(out)])
    assert 'invalid choice' in capsys.readouterr().err
