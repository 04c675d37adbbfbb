"""The C extensions: hot loops where Python's per-item cost was most of the time (each file says which).
Everything else about the package is in pyproject.toml. Building needs a C compiler and Python's headers:
scripts/setup.sh installs gcc and python3-dev."""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("core._otlpwire", ["core/_otlpwire.c"], include_dirs=["core"], depends=["core/otlpwire.h"],
              extra_compile_args=["-O2", "-Wall", "-Werror"]),
    Extension("otlp_receiver.exporters.clickhouse._records", ["otlp_receiver/exporters/clickhouse/_records.c"],
              include_dirs=["core"], depends=["core/otlpwire.h"], extra_compile_args=["-O2", "-Wall", "-Werror"]),
    Extension("otlp_receiver.normalize._repeats", ["otlp_receiver/normalize/_repeats.c"],
              include_dirs=["core"], depends=["core/otlpwire.h"], extra_compile_args=["-O2", "-Wall", "-Werror"]),
    Extension("scoring._volatile", ["scoring/_volatile.c"], extra_compile_args=["-O2", "-Wall", "-Werror"]),
])
