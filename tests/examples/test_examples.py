"""Smoke runs of the examples on small subsets: they train, report and write their files."""
import mnist1d_conv1d
import mnist_convnet
import mnist_interpretation


def test_mnist_convnet_trains_saves_and_plots(tmp_path, capsys):
    accuracy = mnist_convnet.main(['--subset', '1200', '--epochs', '1', '--out', str(tmp_path),
                                   '--verbose', '0'])
    out = capsys.readouterr().out
    assert 'Total params: 93,322' in out and 'test accuracy' in out
    assert accuracy > 0.6
    assert (tmp_path / 'model.h5').stat().st_size > 0
    assert (tmp_path / 'history.png').stat().st_size > 0


def test_mnist1d_conv1d_trains(capsys):
    accuracy = mnist1d_conv1d.main(['--subset', '800', '--epochs', '2', '--verbose', '0'])
    assert 'GlobalMaxPooling1D' in capsys.readouterr().out
    assert accuracy > 0.2


def test_mnist_interpretation_draws_its_figures(tmp_path):
    written = mnist_interpretation.main(['--model', str(tmp_path / 'absent.h5'), '--subset',
                                         '600', '--out', str(tmp_path / 'figures')])
    assert written[0] == 'feature_maps.png' and written[-1] == 'grad_cam.png'
    assert len(written) == 4 and all(name.startswith('filters_conv2d') for name in written[1:3])
