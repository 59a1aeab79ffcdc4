"""Training curves: loss and metrics per epoch, training against validation."""
from matplotlib.ticker import MaxNLocator

from minidl.viz.figures import finish, new_figure

AXIS_NAMES = {'acc': 'accuracy'}  # Keras's short metric names, spelled out on the y axis


def smooth_curve(points, factor=0.8):
    """Exponential moving average: each point becomes ``factor * previous + (1 - factor) *
    point``, which shows the trend of a noisy validation curve (factor 0: no smoothing)."""
    smoothed = []
    for point in points:
        smoothed.append(smoothed[-1] * factor + point * (1 - factor) if smoothed else point)
    return smoothed


def plot_history(history, metrics=None, smooth=None, path=None, title=None):
    """One panel per metric with its training and validation curves per epoch, the metric
    named on its y axis.

    history: a History (what ``fit`` returns) or its ``.history`` dict. metrics: keys to
    draw, e.g. ``['loss', 'acc']``; by default every key that is not a ``val_`` key or the
    learning rate. smooth: a :func:`smooth_curve` factor for all the curves. title: the
    figure's title, e.g. the model and the data it was trained on.
    """
    history = getattr(history, 'history', history)
    metrics = metrics or [key for key in history if not key.startswith('val_') and key != 'lr']
    missing = [key for key in metrics if key not in history]
    if missing:
        raise ValueError(f'plot_history: no {missing} in the history; it has {list(history)}')
    fig = new_figure(5 * len(metrics), 4)
    for ax, key in zip(fig.subplots(1, len(metrics), squeeze=False)[0], metrics):
        for name, style, label in ((key, 'o-', 'training'), (f'val_{key}', 's--', 'validation')):
            if name in history:
                values = smooth_curve(history[name], smooth) if smooth else history[name]
                ax.plot(range(1, len(values) + 1), values, style, label=f'{label} {key}')
        ax.set_xlabel('epoch')
        ax.set_ylabel(AXIS_NAMES.get(key, key))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(key + (f' (smoothed, {smooth})' if smooth else ''))
        ax.legend()
    if title:
        fig.suptitle(title)
    return finish(fig, path)
