"""Assert rewriting for the shared proxier contract."""

import pytest

pytest.register_assert_rewrite("kubeling.testing.proxier_contract")
