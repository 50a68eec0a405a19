"""The gate-set builder: `scripts/build_gate_set.py` is its command line.

One module per concern: `sources` (the pinned registry packages and their licences), `sets` (what
each set holds), `fetch` (the registry clients and unpacking), `images` (JPEG normalisation),
`write` (images, ``manifest.csv``, ``VERSION``) and `attribution` (``ATTRIBUTION.md``). The
modules import the emoji and icon tables (`gate_emoji`, `draw_icons`) from ``scripts/`` and
`harmscan.gateset` from the repository root, both of which the command line puts on
``sys.path``.
"""
