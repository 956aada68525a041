"""fleming: build verifiable medical reasoning models (the Fleming-R1 recipe as plugins).

The public API for plugin authors: ``hookimpl`` to implement hooks, the value types, and the
component contracts in ``fleming.protocols``.
"""
from fleming.hookspecs import hookimpl
from fleming.paths import DataPath, ExistingPath
from fleming.types import Checkpoint, QAItem, Rejected, Verdict

__version__ = "0.1.0"
__all__ = ["Checkpoint", "DataPath", "ExistingPath", "QAItem", "Rejected", "Verdict", "__version__", "hookimpl"]
