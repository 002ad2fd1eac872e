"""pipesched: a self-hosted scheduler daemon for recurring machine-learning pipeline runs.

This module stays empty of imports on purpose: step scripts import ``scheduler.runtime`` on
interpreters that may lack pipesched's dependencies, and that import runs this file first.
"""

__version__ = "0.1.0"
