"""Smoke runs of the examples on small subsets: they train, report and write their files."""
import mnist1d_conv1d
import mnist_convnet
import mnist_interpretation
import pytest

from minidl import models


def images(x):
    """The examples of a batch as a set of bytes, to tell which examples two batches share."""
    return {image.tobytes() for image in x}


@pytest.fixture
def model_calls(monkeypatch):
    """The (x, keyword arguments) of every ``fit`` and the x of every ``evaluate``, recorded
    as the real methods run."""
    calls = {'fit': [], 'evaluate': []}
    fit, evaluate = models.Sequential.fit, models.Sequential.evaluate

    def recording_fit(self, x, y, **kwargs):
        calls['fit'].append((x, kwargs))
        return fit(self, x, y, **kwargs)

    def recording_evaluate(self, x, y, **kwargs):
        calls['evaluate'].append(x)
        return evaluate(self, x, y, **kwargs)
    monkeypatch.setattr(models.Sequential, 'fit', recording_fit)
    monkeypatch.setattr(models.Sequential, 'evaluate', recording_evaluate)
    return calls


def test_mnist_convnet_trains_saves_and_plots(tmp_path, capsys, model_calls):
    accuracy = mnist_convnet.main(['--subset', '1200', '--epochs', '1', '--out', str(tmp_path),
                                   '--verbose', '0'])
    out = capsys.readouterr().out
    assert 'Total params: 93,322' in out and 'test accuracy: ' in out
    assert accuracy > 0.6
    assert (tmp_path / 'model.h5').stat().st_size > 0
    assert (tmp_path / 'history.png').stat().st_size > 0


def test_mnist_convnet_tests_once_on_images_it_never_trained_or_validated_on(tmp_path,
                                                                               model_calls):
    mnist_convnet.main(['--subset', '600', '--epochs', '1', '--out', str(tmp_path),
                        '--verbose', '0'])
    [(trained, settings)] = model_calls['fit']
    [tested] = model_calls['evaluate']
    validated = settings['validation_data'][0]
    assert not images(tested) & (images(trained) | images(validated))
    assert not images(trained) & images(validated)
    assert (len(trained), len(validated), len(tested)) == (540, 60, 100)


def test_mnist1d_conv1d_trains_and_tests_once_on_unseen_sequences(capsys, model_calls):
    accuracy = mnist1d_conv1d.main(['--subset', '800', '--epochs', '2', '--verbose', '0'])
    assert 'GlobalMaxPooling1D' in capsys.readouterr().out
    assert accuracy > 0.2
    [(trained, settings)] = model_calls['fit']
    [tested] = model_calls['evaluate']
    assert settings['validation_split'] > 0 and 'validation_data' not in settings
    assert not images(tested) & images(trained)


def test_mnist_interpretation_draws_its_figures(tmp_path):
    written = mnist_interpretation.main(['--model', str(tmp_path / 'absent.h5'), '--subset',
                                         '600', '--out', str(tmp_path / 'figures')])
    assert written[0] == 'feature_maps.png' and written[-1] == 'grad_cam.png'
    assert len(written) == 4 and all(name.startswith('filters_conv2d') for name in written[1:3])
