"""Writes the PyTorch checkpoints that tests/io reads, with the outputs PyTorch computes.

Needs PyTorch (the tests do not): python tests/io/data/make_torch_fixtures.py
"""
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).parent


def tiny_convnet():
    """Conv(pad 1) -> BatchNorm -> ReLU -> MaxPool -> Conv (no bias) -> ReLU -> Flatten ->
    Linear, on 3x8x8 images."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(4, 6, 3, bias=False), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(6 * 2 * 2, 5))


def tiny_conv1d():
    """Conv1d -> ReLU -> Flatten -> Linear, on 2-channel sequences of length 7."""
    return torch.nn.Sequential(torch.nn.Conv1d(2, 3, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(3 * 5, 2))


def save(name, net, x):
    """The state_dict, and the input (channels-last) with PyTorch's output."""
    net.eval()
    with torch.no_grad():
        y = net(x)
    torch.save(net.state_dict(), HERE / f'{name}.pt')
    channels_last = np.moveaxis(x.numpy(), 1, -1)
    np.savez(HERE / f'{name}_io.npz', x=channels_last, y=y.numpy())


def training_checkpoint(net, x):
    """What a training loop saves: the model's and Adam's state_dicts (after one step on a
    squared-output loss) and the epoch."""
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(x).square().mean().backward()
    optimizer.step()
    torch.save({'model': net.state_dict(), 'optimizer': optimizer.state_dict(), 'epoch': 3},
               HERE / 'tiny_checkpoint.pt')


def main():
    torch.manual_seed(0)
    net = tiny_convnet()
    net[1].running_mean.uniform_(-1, 1)
    net[1].running_var.uniform_(0.5, 2)
    net[1].weight.data.uniform_(0.5, 1.5)
    net[1].bias.data.uniform_(-0.5, 0.5)
    save('tiny_convnet', net, torch.randn(2, 3, 8, 8))
    save('tiny_conv1d', tiny_conv1d(), torch.randn(2, 2, 7))
    torch.save(net, HERE / 'whole_module.pt')  # a pickled module, not a state_dict
    training_checkpoint(tiny_conv1d(), torch.randn(2, 2, 7))


if __name__ == '__main__':
    main()
