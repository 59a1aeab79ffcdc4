"""minidl.viz: training curves, feature maps, filter patterns and Grad-CAM on small nets."""
import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

import minidl
from minidl import callbacks, initializers, layers, models, random, viz


def mnist_like_net():
    """The lessons' MNIST convnet shape on 12x12 inputs, untrained (seeded)."""
    random.seed(0)
    return models.Sequential([
        layers.Input((12, 12, 1)),
        layers.Conv2D(4, 3, activation='relu', name='conv_a'), layers.MaxPooling2D(name='pool_a'),
        layers.Conv2D(6, 3, activation='relu', name='conv_b'),
        layers.Flatten(), layers.Dense(3, activation='softmax', name='scores')])


def image(seed=0):
    return np.random.default_rng(seed).random((12, 12, 1)).astype(np.float32)


def test_smooth_curve_is_an_exponential_moving_average():
    assert viz.smooth_curve([1.0, 2.0, 3.0], factor=0.5) == [1.0, 1.5, 2.25]
    assert viz.smooth_curve([4.0, 1.0], factor=0) == [4.0, 1.0]
    assert viz.smooth_curve([]) == []


def test_plot_history_draws_training_and_validation_per_metric(tmp_path):
    history = {'loss': [1.0, 0.5, 0.4], 'val_loss': [1.1, 0.7, 0.6], 'acc': [0.5, 0.7, 0.8],
               'val_acc': [0.4, 0.6, 0.7], 'lr': [0.1, 0.1, 0.01]}
    fig = viz.plot_history(history, smooth=0.6, path=tmp_path / 'curves.png',
                           title='convnet on MNIST')
    assert isinstance(fig, Figure) and [ax.get_title() for ax in fig.axes] == \
        ['loss (smoothed, 0.6)', 'acc (smoothed, 0.6)']
    assert [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes] == \
        [('epoch', 'loss'), ('epoch', 'accuracy')]
    assert fig.get_suptitle() == 'convnet on MNIST'
    assert all(len(ax.get_lines()) == 2 for ax in fig.axes)
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_ydata(),
                               viz.smooth_curve(history['loss'], 0.6))
    assert Image.open(tmp_path / 'curves.png').size == (1000, 400)
    with pytest.raises(ValueError, match=r"no \['accuracy'\] in the history"):
        viz.plot_history(history, metrics=['accuracy'])


def test_plot_history_takes_what_fit_returns():
    model = models.Sequential([layers.Input((3,)), layers.Dense(2, activation='softmax')])
    model.compile(optimizer='sgd', loss='categorical_crossentropy', metrics=['acc'])
    x = np.random.default_rng(0).random((20, 3)).astype(np.float32)
    history = model.fit(x, np.eye(2, dtype=np.float32)[np.arange(20) % 2], epochs=2,
                        validation_split=0.2, verbose=0,
                        callbacks=[callbacks.LearningRateScheduler(lambda epoch, lr: lr)])
    assert [ax.get_title() for ax in viz.plot_history(history).axes] == ['loss', 'acc']


def test_activation_model_gives_every_feature_map_of_an_image():
    net = mnist_like_net()
    probe = viz.activation_model(net)
    maps = probe.predict(image()[None])
    assert [m.shape for m in maps] == [(1, 10, 10, 4), (1, 5, 5, 4), (1, 3, 3, 6)]
    np.testing.assert_allclose(maps[2], net.get_layer('conv_b')(net.get_layer('pool_a')(
        net.get_layer('conv_a')(minidl.tensor(image()[None])))).numpy(), rtol=1e-6)
    assert viz.activation_model(net, ['conv_b']).predict(image()[None]).shape == (1, 3, 3, 6)
    dense = models.Sequential([layers.Input((4,)), layers.Dense(2)])
    with pytest.raises(ValueError, match='no layer with \\(N, H, W, C\\) outputs'):
        viz.activation_model(dense)


def test_feature_map_grid_tiles_channels_each_normalised():
    maps = np.random.default_rng(1).standard_normal((5, 4, 3)) * 50 + 7
    maps[:, :, 2] = 3.0  # a silent channel shows as flat grey
    grid = viz.feature_map_grid(maps, images_per_row=2)
    assert grid.shape == (10, 8)
    tile = grid[:5, :4]
    assert abs(tile.mean() - 128) < 10 and abs(tile.std() - 64) < 10
    np.testing.assert_array_equal(grid[5:, :4], 128)
    np.testing.assert_array_equal(grid[5:, 4:], 0)  # no fourth channel


def test_plot_feature_maps_has_one_panel_per_layer(tmp_path):
    fig = viz.plot_feature_maps(mnist_like_net(), image(), images_per_row=4,
                                path=tmp_path / 'maps.png')
    assert [ax.get_title() for ax in fig.axes] == \
        ['conv_a: 4 channels', 'pool_a: 4 channels', 'conv_b: 6 channels']
    assert (tmp_path / 'maps.png').stat().st_size > 0


def test_deprocess_image_centres_and_spreads_into_bytes():
    out = viz.deprocess_image(np.random.default_rng(2).standard_normal((20, 20, 3)) * 9 + 4)
    assert out.dtype == np.uint8 and abs(out.mean() - 127.5) < 2
    assert abs(out.std() - 25.5) < 2


def test_filter_pattern_ascends_the_filter_response_and_leaves_the_weights_alone():
    net = mnist_like_net()
    probe = viz.activation_model(net, ['conv_b'])

    def response_after(steps):
        x = viz.filter_pattern(net, 'conv_b', 2, steps=steps, value_range=(0, 1), seed=5,
                               deprocess=False)
        return float(probe.call_logits(minidl.tensor(x))[..., 2].mean().data)
    responses = [response_after(steps) for steps in (0, 10, 20, 20)]
    assert responses[0] + 0.05 < responses[1] < responses[2] - 0.05
    assert responses[2] == responses[3]  # the same seed gives the same ascent
    assert all(w.requires_grad and w.grad is None for w in net.weights)
    shown = viz.filter_pattern(net, net.get_layer('conv_a'), 0, steps=3, seed=0)
    assert shown.shape == (12, 12, 1) and shown.dtype == np.uint8


def test_plot_filter_patterns_draws_the_chosen_filters(tmp_path):
    fig = viz.plot_filter_patterns(mnist_like_net(), 'conv_a', filters=[0, 3], steps=2,
                                   images_per_row=4, path=tmp_path / 'filters.png')
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ['0', '3']


def test_grad_cam_finds_the_evidence_where_the_score_reads_it():
    # score = mean(relu(x)) through a 1x1 convolution of weight 1: every position weighs the
    # same, so the map is the input itself, scaled to a maximum of 1.
    net = models.Sequential([
        layers.Input((6, 6, 1)),
        layers.Conv2D(1, 1, activation='relu', kernel_initializer='ones', name='maps'),
        layers.GlobalAveragePooling2D(),
        layers.Dense(1, kernel_initializer=initializers.Ones(), name='score')])
    x = np.zeros((6, 6, 1), np.float32)
    x[1, 4], x[3, 2] = 2.0, 1.0
    heatmap = viz.grad_cam(net, x, 'maps')
    np.testing.assert_allclose(heatmap, x[:, :, 0] / 2, atol=1e-6)
    assert all(w.requires_grad and w.grad is None for w in net.weights)


def test_grad_cam_maps_the_predicted_class_by_default():
    net, x = mnist_like_net(), image(3)
    predicted = int(net.predict(x[None]).argmax())
    heatmap = viz.grad_cam(net, x, 'conv_b')
    assert heatmap.shape == (3, 3) and 0 <= heatmap.min() and heatmap.max() <= 1
    np.testing.assert_allclose(heatmap, viz.grad_cam(net, x, 'conv_b', predicted))


def test_overlay_heatmap_resizes_the_map_onto_the_image():
    gray = np.full((8, 10, 1), 100, np.float32)
    heatmap = np.array([[0.0, 1.0], [1.0, 0.0]])
    out = viz.overlay_heatmap(gray, heatmap, alpha=0.5)
    assert out.shape == (8, 10, 3) and out.dtype == np.uint8
    assert not np.array_equal(out[0, 0], out[0, -1])  # cold corner against hot corner
    np.testing.assert_array_equal(viz.overlay_heatmap(gray, heatmap, alpha=0), 100)


@pytest.mark.gpu
def test_interpretation_runs_on_a_model_on_the_gpu():
    net, x = mnist_like_net(), image(4)
    on_cpu = viz.grad_cam(net, x, 'conv_b', 1), viz.filter_pattern(net, 'conv_b', 0, steps=3,
                                                                   seed=1, deprocess=False)
    net.to('gpu')
    on_gpu = viz.grad_cam(net, x, 'conv_b', 1), viz.filter_pattern(net, 'conv_b', 0, steps=3,
                                                                   seed=1, deprocess=False)
    for cpu, gpu in zip(on_cpu, on_gpu):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-3, atol=1e-4)


def test_figure_html_holds_the_png_inline():
    fig = Figure(figsize=(1, 1))
    fig.subplots().plot([0, 1])
    tag = viz.figure_html(fig, alt='a "line"')
    assert tag.startswith('<img alt="a &quot;line&quot;" src="data:image/png;base64,iVBORw0KGgo')
