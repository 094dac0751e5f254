"""The compiled per-path words are numpy's SeedSequence + PCG64, bit for bit (api/engine/seeding.py)."""
from __future__ import annotations

import numpy as np
import pytest

from api.engine.seeding import path_words


@pytest.mark.parametrize("seed, crypto", [(0, 0), (0, 1), (7, 42), (2**32 - 1, 2**32), (2**63 - 1, 2**40 + 3),
                                          (123456789, 7)])
def test_each_path_is_numpys_spawned_seed_sequence_and_pcg64(seed, crypto) -> None:
    words = path_words(seed, crypto, 0, 40, 9)
    children = np.random.SeedSequence(seed, spawn_key=(crypto,)).spawn(40)
    expected = np.array([np.random.PCG64(c).random_raw(9) for c in children], dtype=np.uint64)
    assert np.array_equal(words, expected)


def test_paths_far_along_and_a_slice_agree() -> None:
    first = 2**33 + 5  # a path index of two 32-bit words
    words = path_words(3, 9, first, 3, 4)
    for i in range(3):
        ss = np.random.SeedSequence(3, spawn_key=(9, first + i))
        assert np.array_equal(words[i], np.random.PCG64(ss).random_raw(4))
    assert np.array_equal(path_words(3, 9, 0, 10, 5)[4:7], path_words(3, 9, 4, 3, 5))
