import pytest

from harness.audio.fixtures import FixtureLibrary


@pytest.fixture(scope="session")
def fixtures() -> FixtureLibrary:
    return FixtureLibrary.load()
