"""Which packages setuptools puts in the wheel; everything else about the build is in pyproject.toml.

The code packages are found as usual. ``resources/`` (icons, desktop entries, AppStream metadata) sits at the
top of the tree for the installers and ships in the wheel as the package ``coalesce_resources``, which is
how the apps find their icons (:mod:`coalesce_common.resources`). pyproject.toml alone cannot map a
directory to a package name next to automatic discovery, hence this file.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(
            include=["coalesce_common*", "coalesce_client*", "coalesce_receiver*", "coalesce_cloud*"]
        ),
        "coalesce_resources",
    ],
    package_dir={"coalesce_resources": "resources"},
)
