"""Element-type sets kernels declare in ``dtypes=`` (numpy dtypes; bfloat16 from ml_dtypes)."""

from __future__ import annotations

import ml_dtypes
import numpy as np

FLOAT_TYPES = frozenset(map(np.dtype, (np.float16, np.float32, np.float64, ml_dtypes.bfloat16)))
SIGNED_INT_TYPES = frozenset(map(np.dtype, (np.int8, np.int16, np.int32, np.int64)))
UINT_TYPES = frozenset(map(np.dtype, (np.uint8, np.uint16, np.uint32, np.uint64)))
INT_TYPES = SIGNED_INT_TYPES | UINT_TYPES
SIGNED_TYPES = FLOAT_TYPES | SIGNED_INT_TYPES
NUMERIC_TYPES = FLOAT_TYPES | INT_TYPES
ALL_TYPES = None  # no restriction
