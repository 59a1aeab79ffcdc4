"""What the viz modules share: figures made without pyplot, saved atomically."""
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
