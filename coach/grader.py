"""Kept for older imports: the grader lives in the ``coach.grading`` package.

``from coach.grader import Grader, Grade, key_points`` works as before;
``key_points`` is the very function labelled sets index into.
"""

from .grading import *  # noqa: F401,F403
from .grading import __all__  # noqa: F401
