"""The arithmetic that makes a window aggregate the same number offline and online.

Partial aggregates are exact integers, so they merge in any order (late, out-of-order and
replayed events included) to the same total; only the last step turns a total into a float,
by one fixed sequence of IEEE operations, written here twice: for one value (online, plain
Python) and for a column (offline, numpy). ``tests/unit/test_aggregates_exact.py`` checks
the two agree for all inputs.

- A float column's sum is kept in fixed point: each value rounded (half to even) to a
  multiple of 2**-64, summed as an integer. Exact below 2**63 in magnitude; a value of
  2**63 or more is refused. Squares (for stddev) are kept at 2**-32.
- A total ``S`` becomes a float from its magnitude's halves, ``hi, lo = divmod(|S|, 2**64)``:
  ``±(float(lo) + float(hi) * 2**64) * 2**-bits``. Each conversion of a 64-bit integer is
  correctly rounded and the scalings by powers of two are exact, so the result is within one
  unit in the last place of the exact value (the sign is applied last: no cancellation).
- ``approx_count_distinct`` is a HyperLogLog with 2**12 registers over the first 8 bytes of
  the MD5 of the value's text (integers in decimal, booleans as ``true``/``false``); its
  registers merge by maximum and its estimate is computed from exact integers.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

SUM_BITS = 64
"""Fixed-point fraction bits of a float column's sum."""
SQUARE_BITS = 32
"""Fixed-point fraction bits of a float column's sum of squares."""
LIMIT = 2**127
FIXED_MAX = 2.0**63
"""Values a float sum takes: magnitude below this (so each fits the fixed point)."""
_TWO64 = 2.0**64
_MASK64 = 2**64 - 1

HLL_P = 12
HLL_M = 1 << HLL_P
HLL_LOW_BITS = 64 - HLL_P
_HLL_ALPHA_MM = 0.7213 / (1 + 1.079 / HLL_M) * HLL_M * HLL_M
_LINEAR = np.array(
    [0.0] + [HLL_M * math.log(HLL_M / z) for z in range(1, HLL_M + 1)], dtype=np.float64
)
"""Linear counting ``m * ln(m / zeros)``, tabled once so both paths read the same numbers."""


class ExactRangeError(ArithmeticError):
    """A value or total beyond what the fixed-point sums hold."""


def fixed(x: float, bits: int) -> int:
    """``x`` rounded half to even to a multiple of ``2**-bits``, as that multiple."""
    try:
        q = round(x * 2.0**bits)
    except (OverflowError, ValueError):  # inf, nan
        raise ExactRangeError(f"{x!r} cannot be summed exactly") from None
    if not -LIMIT < q < LIMIT:
        raise ExactRangeError(f"{x!r} is beyond the exact sum's range (|x| < 2**63)")
    return q


def fixed_sql(expr: str, bits: int) -> str:
    """The same rounding in DuckDB: the product by a power of two is exact, as in Python."""
    return f"round_even(({expr})::DOUBLE * {float(2**bits)!r}, 0)::HUGEINT"


def to_float(total: int, bits: int) -> float:
    """A fixed-point (or, with ``bits=0``, plain integer) total as a float."""
    mag = -total if total < 0 else total
    hi, lo = mag >> 64, mag & _MASK64
    value = (float(lo) + float(hi) * _TWO64) * 2.0**-bits
    return -value if total < 0 else value


def to_float_array(hi: np.ndarray, lo: np.ndarray, neg: np.ndarray, bits: int) -> np.ndarray:
    """``to_float`` over columns of the magnitude's high (int64) and low (uint64) halves and
    the sign (bool: negative)."""
    value = (lo.astype(np.float64) + hi.astype(np.float64) * _TWO64) * 2.0**-bits
    return np.where(neg, -value, value)


def limbs_sql(expr: str) -> tuple[str, str, str]:
    """SQL for a HUGEINT total's magnitude halves (high, low) and whether it is negative."""
    return (
        f"(abs({expr}) >> 64)::BIGINT",
        f"(abs({expr}) & {_MASK64}::HUGEINT)::UBIGINT",
        f"(({expr}) < 0)",
    )


def mean(total: float, n: int) -> float:
    return total / n


def stddev(s1: float, s2: float, n: int) -> float:
    """Sample standard deviation from the sums of values and of squares (n >= 2)."""
    var = (s2 - s1 * s1 / n) / (n - 1)
    return math.sqrt(var) if var > 0.0 else 0.0


def stddev_array(s1: np.ndarray, s2: np.ndarray, n: np.ndarray) -> np.ndarray:
    nf = n.astype(np.float64)
    var = (s2 - s1 * s1 / nf) / (nf - 1.0)
    return np.sqrt(np.where(var > 0.0, var, 0.0))


# -- HyperLogLog ---------------------------------------------------------------------------
def hll_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def hll_register(value: object) -> tuple[int, int]:
    """(register index, rank) of one value."""
    h = int.from_bytes(hashlib.md5(hll_text(value).encode()).digest()[:8], "little")
    low = h & ((1 << HLL_LOW_BITS) - 1)
    return h >> HLL_LOW_BITS, HLL_LOW_BITS + 1 - low.bit_length()


def hll_register_sql(expr: str) -> tuple[str, str]:
    """SQL for the register index and rank of ``expr`` (a column), as ``hll_register``."""
    h = f"md5_number_upper(CAST({expr} AS VARCHAR))"
    low = f"({h} & {(1 << HLL_LOW_BITS) - 1}::UBIGINT)"
    # floor(log2) of an integer below 2**52 may be one off near a power of two: correct it
    # with exact shifts so the bit length is exact.
    b0 = f"floor(log2(greatest({low}, 1)::DOUBLE))::INTEGER"
    bitlen = (
        f"(CASE WHEN {low} = 0 THEN 0 ELSE {b0} + 1 - ((1::UBIGINT << {b0}) > {low})::INTEGER"
        f" + ((1::UBIGINT << ({b0} + 1)) <= {low})::INTEGER END)"
    )
    return f"({h} >> {HLL_LOW_BITS})::INTEGER", f"({HLL_LOW_BITS + 1} - {bitlen})"


def hll_sums(registers: dict[int, int]) -> tuple[int, int]:
    """Exact ``sum(2**(64 - rank))`` over all registers (empty = rank 0), and empty count."""
    zeros = HLL_M - len(registers)
    return sum(1 << (64 - r) for r in registers.values()) + zeros * (1 << 64), zeros


def hll_estimate(z_total: int, zeros: int) -> int:
    estimate = _HLL_ALPHA_MM / to_float(z_total, 64)
    if estimate <= 2.5 * HLL_M and zeros > 0:
        estimate = float(_LINEAR[zeros])
    return round(estimate)


def hll_estimate_array(hi: np.ndarray, lo: np.ndarray, zeros: np.ndarray) -> np.ndarray:
    estimate = _HLL_ALPHA_MM / to_float_array(hi, lo, np.zeros(len(hi), bool), 64)
    small = (estimate <= 2.5 * HLL_M) & (zeros > 0)
    estimate = np.where(small, _LINEAR[zeros], estimate)
    return np.rint(estimate).astype(np.int64)
