"""Builds carry the default fixtures and scenarios as package data (harness/_data/); the
repository's audio_fixtures/ and scenarios/ stay their only source."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA = ("audio_fixtures", "scenarios")


class BuildPyWithData(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's directories (harness/resources.py)
        here = Path(__file__).resolve().parent
        for name in DATA:
            src, dst = here / name, Path(self.build_lib) / "harness" / "_data" / name
            if src.is_dir():
                shutil.rmtree(dst, ignore_errors=True)
                shutil.copytree(src, dst)


setup(cmdclass={"build_py": BuildPyWithData})
