"""Show pytest's detailed assertion messages inside the shared contract suite too."""

import pytest

pytest.register_assert_rewrite("kubeling.testing.storage_contract")
