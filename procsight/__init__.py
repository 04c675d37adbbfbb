"""procsight: rule-free detection of unusual processes, inside OpenTelemetry pipelines.

This package is the top layer: the `procsight` command (`cli.py`) and `procsight run` (`run.py`).
"""

from core import __version__

__all__ = ["__version__"]
