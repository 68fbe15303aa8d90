"""What the tests, the benchmarks and the scripts need around the product, written once.

- :mod:`.xvfb`: a private Xvfb on a free display (``start_xvfb``), and reading a child's line with a deadline;
- :mod:`.pattern`: the frameless full-screen Qt window every screen pattern is painted in, which says
  ``ready`` once its first full frame reached the X server and quits with its parent;
- :mod:`.quadrants`: the four-colour pattern the capture tests look for
  (``python -m coalesce_testing.quadrants``);
- :mod:`.frames`: ``FakeSource``, a decoded track with a picture set by hand, for room-display views;
- :mod:`.waiting`: ``until``, waiting on a model's change notifications for a state, never sleeping.

Not part of the product: it is never installed, so children that import it get the checkout on their path.
"""
