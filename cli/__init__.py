"""The `harmscan` command line: a typer app assembled from one small module per area."""
