"""Tools for testing code that uses prodwrap (grows into the full testing toolkit).

``no_sleep()`` swaps in a :class:`FakeClock`: retry waits and backoff advance fake time
instantly, and deadlines are measured on that fake time.
"""

from prodwrap.testing._clock import FakeClock, no_sleep
from prodwrap.testing._strict import strict_shadows

__all__ = ["FakeClock", "no_sleep", "strict_shadows"]
