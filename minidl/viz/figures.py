"""What the viz modules share: figures made without pyplot, saved atomically, and gradients
with respect to a model's input alone."""
import contextlib

from matplotlib.figure import Figure

from minidl.utils import atomic_write


def new_figure(width, height):
    """A Figure of ``width`` x ``height`` inches that no pyplot state knows about."""
    return Figure(figsize=(width, height))


def finish(fig, path):
    """Lay the figure out, save it to ``path`` (all or nothing) if one is given, return it."""
    fig.tight_layout()
    if path is not None:
        with atomic_write(path) as tmp:
            fig.savefig(tmp, dpi=100)
    return fig


@contextlib.contextmanager
def input_gradients_only(model):
    """Inside the block the model's weights take no gradient, so a backward pass computes only
    what an input needs (half the work, and no weight ``.grad`` is touched); their flags are
    restored after."""
    weights = [w for w in model.weights if w.requires_grad]
    for weight in weights:
        weight.requires_grad = False
    try:
        yield
    finally:
        for weight in weights:
            weight.requires_grad = True
