"""Kafka reading that both sides need: the pipeline's tasks and the streaming side.

Sits beside `registry`, above the core (`harmscan`, `conf`, which import no Kafka) and below
`tasks` and `serving`, which never import each other; so what both read from Kafka the same way
lives here once.
"""
