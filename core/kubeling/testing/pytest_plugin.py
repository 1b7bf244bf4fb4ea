"""kubeling's pytest plugin (entry point ``pytest11``): fixtures for plugin authors.

Contract suites live beside it (:mod:`kubeling.testing.storage_contract`, ...); subclass
them in your plugin's tests.
"""

import pytest

pytest.register_assert_rewrite("kubeling.testing.storage_contract",
                               "kubeling.testing.runtime_contract",
                               "kubeling.testing.proxier_contract")
