"""The conformance suites run on the integration devnet (tests/integration/conftest.py)."""

from tests.integration.conftest import Devnet, devnet, devnet_world  # noqa: F401 - pytest fixtures

__all__ = ["Devnet"]
