"""Show pytest's detailed assertion messages inside the shared contract suite too.

(Only possible before the module is first imported; kubeling's own pytest plugin is the
better place for this, as it loads before any test module.)
"""

import sys

import pytest

if "kubeling.testing.storage_contract" not in sys.modules:
    pytest.register_assert_rewrite("kubeling.testing.storage_contract")
