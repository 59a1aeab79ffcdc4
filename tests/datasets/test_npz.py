"""Arrays read from .npz files with their headers checked before anything is allocated."""
import io
import zipfile

import numpy as np
import pytest

from minidl.datasets import mnist, mnist1d
from minidl.datasets.npz import read_arrays

EXPECTED = {'a': ((3, 4), np.uint8), 'b': ((5,), np.int64)}


def npz_with(path, members):
    """An .npz whose members are the raw ``{name: .npy bytes}`` given."""
    with zipfile.ZipFile(path, 'w') as archive:
        for name, data in members.items():
            archive.writestr(f'{name}.npy', data)
    return path


def npy(array=None, header=None, data=None):
    """The bytes of a .npy file: ``array``'s, or a forged ``header`` dict followed by
    ``data``."""
    buffer = io.BytesIO()
    if array is not None:
        np.save(buffer, array)
        return buffer.getvalue()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + data


GOOD = {'a': npy(np.arange(12, dtype=np.uint8).reshape(3, 4)), 'b': npy(np.arange(5))}
HUGE = npy(header={'descr': '|u1', 'fortran_order': False, 'shape': (10**6, 10**6)},
           data=b'\0' * 64)


def test_the_expected_arrays_are_read_in_either_memory_order(tmp_path):
    fortran = np.asfortranarray(np.arange(12, dtype=np.uint8).reshape(3, 4))
    arrays = read_arrays(npz_with(tmp_path / 'f.npz', {**GOOD, 'a': npy(fortran)}), EXPECTED,
                         'demo')
    np.testing.assert_array_equal(arrays['a'], fortran)
    np.testing.assert_array_equal(arrays['b'], np.arange(5))


@pytest.mark.parametrize('member, message', [
    (HUGE, r'demo: a in .*bad.npz is uint8 \(1000000, 1000000\), expected uint8 \(3, 4\)'),
    (npy(np.zeros((3, 4), np.float32)), r'is float32 \(3, 4\), expected uint8'),
    (GOOD['a'][:-1], 'does not hold exactly the 12 bytes of data its header announces'),
    (GOOD['a'] + b'\0', 'does not hold exactly the 12 bytes'),
    (b'\x93NUMPY\x01\x00\x10\x00{garbage}      \n', 'has no valid .npy header'),
    (b'\x93NUMPY\x09\x00', 'has no valid .npy header'),
    (b'PK', 'has no valid .npy header')])
def test_a_damaged_member_is_named_before_anything_is_allocated(tmp_path, member, message):
    with pytest.raises(ValueError, match=message):
        read_arrays(npz_with(tmp_path / 'bad.npz', {**GOOD, 'a': member}), EXPECTED, 'demo')


def test_missing_members_and_non_zip_files_are_named(tmp_path):
    with pytest.raises(ValueError, match=r'demo: .*part.npz lacks the array\(s\) b'):
        read_arrays(npz_with(tmp_path / 'part.npz', {'a': GOOD['a']}), EXPECTED, 'demo')
    junk = tmp_path / 'junk.npz'
    junk.write_bytes(b'not a zip')
    with pytest.raises(ValueError, match='demo: .*junk.npz is not a readable .npz file'):
        read_arrays(junk, EXPECTED, 'demo')


def test_mnist_npz_declaring_a_terabyte_is_a_value_error(tmp_path):
    path = npz_with(tmp_path / 'mnist.npz', {name: HUGE for name in mnist.ARRAYS})
    with pytest.raises(ValueError, match=r'MNIST: x_train in .*mnist.npz is uint8 '
                                         r'\(1000000, 1000000\), expected uint8 \(60000, 28, 28\)'):
        mnist.load_data(path=path)


def test_an_mnist1d_cache_declaring_a_terabyte_is_ignored(tmp_path):
    path = npz_with(tmp_path / 'mnist1d.npz', {name: HUGE for name in mnist1d.SHAPES})
    with pytest.warns(RuntimeWarning, match='ignoring the unreadable cache'):
        assert mnist1d._read_cache(path) is None
