"""Parameter validation helpers of ddpd.params."""

import numpy as np
import pytest

from ddpd.model.params import ModelParams
from ddpd.params import is_int, parse_params


def test_is_int_accepts_python_and_numpy_integers_only():
    for good in (0, -4, 7, np.int64(3), np.uint8(2)):
        assert is_int(good), good
    # floats, strings, None and bools are not integers (an empty dtype kind once passed)
    for bad in (2.5, 2.0, "256", None, True, np.float64(2.0), [1]):
        assert not is_int(bad), bad


def test_parse_params_names_the_section_and_key():
    assert parse_params(ModelParams, {"kernel_table": 128}, "train.model").kernel_table == 128
    with pytest.raises(ValueError, match=r"model\.kernel_table"):
        parse_params(ModelParams, {"kernel_table": 1}, "train.model")
    with pytest.raises(ValueError, match=r"model\.kernel_table"):
        parse_params(ModelParams, {"kernel_table": "256"}, "train.model")
