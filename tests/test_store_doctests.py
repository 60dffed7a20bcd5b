"""The examples in the docstrings of the results store's modules (file formats and checks, the run lock) run."""

from __future__ import annotations

import doctest

import pytest

from evalsuite import filelock, result_schema


@pytest.mark.parametrize("module", [result_schema, filelock])
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
