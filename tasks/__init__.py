"""Prefect tasks, one module per stage; each wraps a core function and does the I/O around it."""
