"""The wheel also ships the top-level `migrations/` folder, as the package `rotor_migrations`.

setup.cfg holds everything else; a package under another name than its folder needs
`package_dir`, which `packages = find:` in setup.cfg cannot be combined with.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["service", "service.*"]),
        "rotor_migrations",
        "rotor_migrations.versions",
    ],
    package_dir={"rotor_migrations": "migrations"},
)
