"""The Monte Carlo's per-path random words, compiled: numpy's SeedSequence and PCG64, bit for bit, without an
object per path.

A path's generator is `PCG64(SeedSequence(seed, spawn_key=(crypto, path)))`,
exactly what `SeedSequence(seed, spawn_key=(crypto,)).spawn(paths)[path]`
seeds (the spawned child carries that spawn key). Building those objects cost
~26 us a path (the seed hash runs through numpy calls), a quarter of a
bootstrap path's whole run; here the same hash (numpy's `SeedSequence`
mix_entropy and generate_state, pool size 4) and PCG64's seeding and
`random_raw` run in one compiled loop. tests/test_engine_seeding.py checks
every word against numpy's own objects; numpy's algorithms are fixed by its
stream-compatibility policy for SeedSequence and PCG64.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .numeric import CACHE

_M32 = np.uint64(0xFFFFFFFF)
_INIT_A, _MULT_A = np.uint64(0x43B0D7E5), np.uint64(0x931E8875)
_INIT_B, _MULT_B = np.uint64(0x8B51F9DD), np.uint64(0x58F38DED)
_MIX_L, _MIX_R = np.uint64(0xCA01F9DD), np.uint64(0x4973F715)
_S16, _S32, _S64 = np.uint64(16), np.uint64(32), np.uint64(64)
_PCG_MULT_HI, _PCG_MULT_LO = np.uint64(2549297995355413924), np.uint64(4865540595714422341)
POOL = 4


def path_words(seed: int, crypto_key: int, first_path: int, paths: int, words: int) -> np.ndarray:
    """paths x words uint64: row i holds PCG64(SeedSequence(seed, spawn_key=(crypto_key, first_path + i)))
    .random_raw(words). seed, crypto_key and path indices are integers from 0 to 2**63 - 1."""
    out = np.empty((int(paths), int(words)), dtype=np.uint64)
    entropy = _uint32_words(int(seed))
    if len(entropy) < POOL:  # numpy pads the run entropy to the pool size when there is a spawn key
        entropy = entropy + [0] * (POOL - len(entropy))
    _fill_words(np.array(entropy + _uint32_words(int(crypto_key)), dtype=np.uint64), int(first_path), out)
    return out


def _uint32_words(n: int) -> list[int]:
    """numpy's _int_to_uint32_array: little-endian 32-bit words, [0] for 0."""
    if n < 0:
        raise ValueError("seed words must be non-negative")
    if n == 0:
        return [0]
    words = []
    while n:
        words.append(n & 0xFFFFFFFF)
        n >>= 32
    return words


@njit(cache=CACHE, nogil=True)
def _hashmix(value, hash_const):
    value = (value ^ hash_const[0]) & _M32
    hash_const[0] = (hash_const[0] * _MULT_A) & _M32
    value = (value * hash_const[0]) & _M32
    return value ^ (value >> _S16)


@njit(cache=CACHE, nogil=True)
def _mix(x, y):
    result = ((_MIX_L * x) - (_MIX_R * y)) & _M32
    return result ^ (result >> _S16)


@njit(cache=CACHE, nogil=True)
def _mul128(ah, al, bh, bl):
    """(a * b) mod 2**128 of 128-bit numbers as (high, low) uint64 pairs."""
    a0, a1 = al & _M32, al >> _S32
    b0, b1 = bl & _M32, bl >> _S32
    p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
    middle = (p00 >> _S32) + (p01 & _M32) + (p10 & _M32)
    lo = (p00 & _M32) | (middle << _S32)
    hi = p11 + (p01 >> _S32) + (p10 >> _S32) + (middle >> _S32)
    hi = hi + ah * bl + al * bh
    return hi, lo


@njit(cache=CACHE, nogil=True)
def _add128(ah, al, bh, bl):
    lo = al + bl
    carry = np.uint64(1) if lo < al else np.uint64(0)
    return ah + bh + carry, lo


@njit(cache=CACHE, nogil=True)
def _fill_words(base_entropy, first_path, out):
    """Each row: SeedSequence(entropy = base_entropy + words of the path index) -> generate_state(4, uint64)
    -> PCG64 seeding -> random_raw."""
    n_base = base_entropy.size
    entropy = np.empty(n_base + 2, dtype=np.uint64)
    entropy[:n_base] = base_entropy
    mixer = np.empty(POOL, dtype=np.uint64)
    hash_const = np.empty(1, dtype=np.uint64)
    state32 = np.empty(8, dtype=np.uint64)
    for row in range(out.shape[0]):
        path = np.uint64(first_path + row)
        n = n_base
        if path == 0:
            entropy[n] = np.uint64(0)
            n += 1
        else:
            while path != 0:
                entropy[n] = path & _M32
                path = path >> _S32
                n += 1
        # mix_entropy
        hash_const[0] = _INIT_A
        for i in range(POOL):
            mixer[i] = _hashmix(entropy[i] if i < n else np.uint64(0), hash_const)
        for i_src in range(POOL):
            for i_dst in range(POOL):
                if i_src != i_dst:
                    mixer[i_dst] = _mix(mixer[i_dst], _hashmix(mixer[i_src], hash_const))
        for i_src in range(POOL, n):
            for i_dst in range(POOL):
                mixer[i_dst] = _mix(mixer[i_dst], _hashmix(entropy[i_src], hash_const))
        # generate_state(4, uint64): 8 uint32 words, paired little-endian
        h = _INIT_B
        for i in range(8):
            value = (mixer[i % POOL] ^ h) & _M32
            h = (h * _MULT_B) & _M32
            value = (value * h) & _M32
            state32[i] = value ^ (value >> _S16)
        seed_hi = state32[0] | (state32[1] << _S32)
        seed_lo = state32[2] | (state32[3] << _S32)
        inc_hi = state32[4] | (state32[5] << _S32)
        inc_lo = state32[6] | (state32[7] << _S32)
        # PCG64 seeding: inc = (initseq << 1) | 1; state = 0; step; state += initstate; step
        inc_hi = (inc_hi << np.uint64(1)) | (inc_lo >> np.uint64(63))
        inc_lo = (inc_lo << np.uint64(1)) | np.uint64(1)
        s_hi, s_lo = _add128(np.uint64(0), np.uint64(0), inc_hi, inc_lo)  # 0 * mult + inc
        s_hi, s_lo = _add128(s_hi, s_lo, seed_hi, seed_lo)
        m_hi, m_lo = _mul128(s_hi, s_lo, _PCG_MULT_HI, _PCG_MULT_LO)
        s_hi, s_lo = _add128(m_hi, m_lo, inc_hi, inc_lo)
        for k in range(out.shape[1]):  # next64: step, then the XSL-RR output of the new state
            m_hi, m_lo = _mul128(s_hi, s_lo, _PCG_MULT_HI, _PCG_MULT_LO)
            s_hi, s_lo = _add128(m_hi, m_lo, inc_hi, inc_lo)
            x = s_hi ^ s_lo
            rot = s_hi >> np.uint64(58)
            out[row, k] = (x >> rot) | (x << ((_S64 - rot) & np.uint64(63)))
