"""The whole ``retrain`` chain on the offline Open Images mirror: ETL -> train both architectures
-> evaluate -> register -> promote, against real MLflow under the Prefect test harness."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_retrain_registers_both_models_and_sets_champion(
    mirror_servers, mlflow_server: str, prefect_harness: None, make_source, unique
) -> None:
    import mlflow

    from flows.retrain import retrain

    name = unique("harmscan")
    source = make_source(
        *mirror_servers,
        f"mlflow.tracking_uri={mlflow_server}",
        f"mlflow.experiment={unique('retrain')}",
        f"mlflow.registered_model={name}",
        "mlflow.floors={}",  # the gate's floors are tested elsewhere; here the chain is
        "etl.max_per_side=60",
        "train.image_size=64",
        "train.batch_size=16",
        "train.threads=2",
    )
    result = retrain(source=source, epochs=1, limit_batches=3)

    client = mlflow.MlflowClient(mlflow_server)
    versions = client.search_model_versions(f"name='{name}'")
    assert sorted(v.tags["arch"] for v in versions) == ["mobilenet_v2", "resnet50"]
    assert {v.tags["dataset_version"] for v in versions} == {result.dataset_version}
    assert len(result.decisions) == 2
    champion = client.get_model_version_by_alias(name, "champion")
    assert champion.version == result.champion_version
    assert champion.tags["promotion_decision"] == "promoted"
    # every candidate carries its decision; the one not promoted is the challenger
    decided = {v.version: v.tags["promotion_decision"] for v in versions}
    assert set(decided.values()) <= {"promoted", "rejected"}
    if "rejected" in decided.values():
        challenger = client.get_model_version_by_alias(name, "challenger").version
        assert decided[challenger] == "rejected"
