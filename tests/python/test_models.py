"""Logged models (MLflow 3.x): sklearn log_model, pyfunc loading by every URI, search, registry."""

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression

from helpers import unique


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 4)), columns=["a", "b", "c", "d"])
    y = (X["a"] + 0.5 * X["b"] > 0).astype(int)
    return LogisticRegression().fit(X, y), X


def test_sklearn_log_model_and_load_by_every_uri(client, experiment_id, trained):
    model, X = trained
    expected = model.predict(X)
    with mlflow.start_run() as run:
        mlflow.log_param("C", 1.0)
        mlflow.log_metric("acc", float((expected == model.predict(X)).mean()))
        info = mlflow.sklearn.log_model(model, name="model", input_example=X.head(3))
    run_id = run.info.run_id
    assert info.model_id.startswith("m-")
    assert info.run_id == run_id

    for uri in (f"models:/{info.model_id}", f"runs:/{run_id}/model", info.model_uri):
        loaded = mlflow.pyfunc.load_model(uri)
        np.testing.assert_array_equal(np.asarray(loaded.predict(X)), expected, err_msg=uri)
    sk = mlflow.sklearn.load_model(f"models:/{info.model_id}")
    np.testing.assert_array_equal(sk.predict(X), expected)

    lm = client.get_logged_model(info.model_id)
    assert lm.model_id == info.model_id
    assert lm.name == "model"
    assert lm.experiment_id == experiment_id
    assert lm.source_run_id == run_id
    assert str(lm.status) in ("READY", "LoggedModelStatus.READY", "LOGGED_MODEL_READY")
    assert lm.params.get("C") == "1.0"
    assert lm.artifact_location.endswith(f"/models/{info.model_id}/artifacts")

    outputs = client.get_run(run_id).outputs.model_outputs
    assert [o.model_id for o in outputs] == [info.model_id]


def test_search_logged_models(client, experiment_id, trained):
    model, _ = trained
    ids = {}
    for name in ["first", "second"]:
        with mlflow.start_run():
            ids[name] = mlflow.sklearn.log_model(model, name=name).model_id

    found = client.search_logged_models(experiment_ids=[experiment_id])
    assert [m.model_id for m in found] == [ids["second"], ids["first"]]  # newest first
    by_name = client.search_logged_models(experiment_ids=[experiment_id], filter_string="name = 'first'")
    assert [m.model_id for m in by_name] == [ids["first"]]
    ordered = client.search_logged_models(
        experiment_ids=[experiment_id], order_by=[{"field_name": "name", "ascending": True}]
    )
    assert [m.name for m in ordered] == ["first", "second"]
    page = client.search_logged_models(experiment_ids=[experiment_id], max_results=1)
    assert len(page) == 1 and page.token
    rest = client.search_logged_models(experiment_ids=[experiment_id], max_results=1, page_token=page.token)
    assert [m.model_id for m in rest] == [ids["first"]]


def test_logged_model_tags_and_missing_model(client, experiment_id):
    lm = client.create_logged_model(experiment_id, name="bare", tags={"k": "v"})
    client.set_logged_model_tags(lm.model_id, {"k2": "v2"})
    got = client.get_logged_model(lm.model_id)
    assert got.tags["k"] == "v" and got.tags["k2"] == "v2"
    client.delete_logged_model_tag(lm.model_id, "k")
    assert "k" not in client.get_logged_model(lm.model_id).tags
    with pytest.raises(MlflowException) as e:
        client.get_logged_model("m-" + "0" * 32)
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_register_and_load_by_name_and_alias(client, experiment_id, trained):
    model, X = trained
    name = unique("registered")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=name)
    assert str(info.registered_model_version) == "1"
    mv = client.get_model_version(name, "1")
    assert mv.status == "READY" and mv.source == f"models:/{info.model_id}"
    client.set_registered_model_alias(name, "champion", "1")
    for uri in (f"models:/{name}/1", f"models:/{name}@champion"):
        np.testing.assert_array_equal(np.asarray(mlflow.pyfunc.load_model(uri).predict(X)), model.predict(X), err_msg=uri)
    tag = client.get_logged_model(info.model_id).tags["mlflow.modelVersions"]
    assert f'"name": "{name}"' in tag
