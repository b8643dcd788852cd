"""deploy/: the Serve config and the RayService's embedded one are valid Serve configs whose
application arguments voicewire accepts, so `serve run`/`kubectl apply` fail on nothing we wrote."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytest.importorskip("ray.serve", reason="the cluster extra (ray[serve]) is not installed")

from ray.serve.schema import ServeDeploySchema  # noqa: E402

from stream.server.ray_serve import ServeArgs, deployment_options  # noqa: E402

DEPLOY = Path(__file__).parents[2] / "deploy"


def serve_configs() -> dict[str, dict]:
    service = yaml.safe_load((DEPLOY / "rayservice.yaml").read_text())
    return {"serve.yaml": yaml.safe_load((DEPLOY / "serve.yaml").read_text()),
            "rayservice.yaml": yaml.safe_load(service["spec"]["serveConfigV2"])}


@pytest.mark.parametrize("name", ["serve.yaml", "rayservice.yaml"])
def test_serve_config_is_valid_and_names_our_builder(name: str):
    config = ServeDeploySchema.model_validate(serve_configs()[name])
    (app,) = config.applications
    assert app.import_path == "stream.server.ray_serve:build"
    args = ServeArgs.model_validate(app.args)
    options = deployment_options(args, args.settings())
    assert options["max_ongoing_requests"] == args.max_sessions + args.http_slots   # sessions hold slots
    scaling = options["autoscaling_config"]
    assert scaling["min_replicas"] <= scaling["max_replicas"]
    assert options["graceful_shutdown_timeout_s"] > args.drain_timeout_s


def test_a_misspelt_argument_is_refused_naming_it():
    with pytest.raises(ValueError, match="max_replica"):
        ServeArgs.model_validate({"max_replica": 3})


def test_the_rayservice_puts_one_replica_on_each_gpu():
    service = yaml.safe_load((DEPLOY / "rayservice.yaml").read_text())
    args = ServeArgs.model_validate(yaml.safe_load(service["spec"]["serveConfigV2"])["applications"][0]["args"])
    assert args.num_gpus == 1
    (workers,) = service["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    (container,) = workers["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert workers["maxReplicas"] >= args.max_replicas


def test_limits_are_checked_by_name_and_reach_the_settings():
    args = ServeArgs.model_validate({"limits": {"max_http_body_bytes": 100_000, "idle_timeout_s": 30}})
    assert args.settings().limits.max_http_body_bytes == 100_000
    assert args.settings().limits.idle_timeout_s == 30.0
    with pytest.raises(ValueError, match="no such limit max_body"):
        ServeArgs.model_validate({"limits": {"max_body": 1}})
