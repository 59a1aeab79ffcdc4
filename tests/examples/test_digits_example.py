"""Smoke test of examples/digits_from_directory.py on a handful of digits."""
import digits_from_directory


def test_digits_example_writes_folders_and_trains(tmp_path, capsys):
    accuracy = digits_from_directory.main(['--epochs', '1', '--per-class', '5',
                                           '--batch-size', '10', '--workdir', str(tmp_path),
                                           '--verbose', '0'])
    assert 0 <= accuracy <= 1
    assert sorted(p.name for p in (tmp_path / 'train').iterdir()) == [str(d) for d in range(10)]
    assert len(list((tmp_path / 'train' / '3').glob('*.png'))) == 5
    assert 'Found 50 images belonging to 10 classes.' in capsys.readouterr().out
