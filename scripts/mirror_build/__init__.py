"""The offline mirror's builder: `scripts/build_mirror.py` is its command line.

One module per concern: `icons` (the three icon packages, their licences, loading an icon),
`compose` (one composite image), `records` (the catalog's images: ids, subsets, labels, defects)
and `write` (the Open Images metadata, the images, ``expected.csv``, the domains side file and the
icon list of ``ATTRIBUTION.md``). `write` imports `conf` and `harmscan` from the repository root,
which the command line puts on ``sys.path``.
"""
