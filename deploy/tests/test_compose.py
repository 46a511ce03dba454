"""docker-compose.yml, .env.example, deploy/ and the Dockerfile, checked statically: the compose
file is valid against the Compose Specification (schema vendored in deploy/schema/), every
variable it reads is in .env.example with no real secret, every service of ours has its admin
port, health check and read-only root, nginx and Prometheus point at what the file runs, and the
image is built the way docs/operations.md says."""

import json
import re

import jsonschema
import pytest

from composefile import (
    COMPOSE, DOCKERFILE, ROOT, env_example, environment_of, final_image_stage, is_ours,
    load_compose, quickstart, referenced_variables, resolved_compose,
)

SECRETS = ["CG_INTERNAL_TOKEN", "JWT_SECRET", "POSTGRES_PASSWORD", "REDIS_PASSWORD",
           "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"]


def test_the_compose_file_follows_the_compose_specification():
    schema = json.loads((ROOT / "deploy" / "schema" / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    compose = load_compose()
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
    # The schema is not a formality: a misspelt key is an error.
    broken = {**compose, "services": {**compose["services"], "redis": {**compose["services"]["redis"], "helthcheck": {}}}}
    assert list(validator.iter_errors(broken))


def test_every_variable_is_in_env_example_without_a_real_secret():
    example = env_example()
    used = referenced_variables(COMPOSE.read_text())
    assert used <= set(example), f"missing from .env.example: {sorted(used - set(example))}"
    for key in SECRETS:
        assert example[key].startswith("change-me"), f"{key} must be a placeholder"
    resolved_compose()  # every required (:?) variable has a value


def test_the_project_variables_are_in_every_artifact():
    example = env_example()
    compose = resolved_compose()
    gateway = environment_of(compose["services"]["gateway-1"])
    config = (ROOT / "k8s" / "base" / "config.env").read_text()
    template = (ROOT / "k8s" / "base" / "secret.template.yaml").read_text()
    image = final_image_stage()
    for name in ["CG_INTERNAL_TOKEN", "JWT_SECRET", "CG_HOST"]:
        assert name in example, f".env.example lacks {name}"
        assert name in gateway, f"docker-compose.yml lacks {name}"
        assert f"{name}=" in config or f"{name}:" in template, f"k8s lacks {name}"
    assert gateway["CG_HOST"] == "0.0.0.0" and image["env"]["CG_HOST"] == "0.0.0.0"
    assert "CG_HOST=0.0.0.0" in config


def test_our_services_have_admin_ports_health_checks_and_a_read_only_root():
    compose = resolved_compose()
    ours = {n: s for n, s in compose["services"].items() if is_ours(s)}
    assert {"migrate", "tokenguard", "trustguard", "contextguard", "biasguard", "healthguard",
            "gateway-1", "gateway-2", "gateway-3"} <= set(ours)
    for name, service in ours.items():
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"], name
        env = environment_of(service)
        assert env["CG_STORAGE_MODE"] == "centralized", name
        if name == "migrate":
            assert service["command"] == ["/usr/local/bin/codeguardians", "migrate"]
            continue
        port, admin = int(env["CG_PORT"]), int(env["CG_ADMIN_PORT"])
        assert admin == port + 1000, name
        assert service["healthcheck"]["test"] == [
            "CMD", "/usr/local/bin/codeguardians", "probe", f"http://127.0.0.1:{port}/health/ready"], name
        assert "ports" not in service, f"{name} must not publish a port (nginx does)"
        conditions = {d: c["condition"] for d, c in service["depends_on"].items()}
        assert conditions["migrate"] == "service_completed_successfully", name
    published = [n for n, s in compose["services"].items() if s.get("ports") and not s.get("profiles")]
    assert published == ["nginx"]


def test_nginx_and_prometheus_point_at_the_services():
    compose = resolved_compose()
    gateways = sorted(n for n, s in compose["services"].items()
                      if is_ours(s) and s.get("command") == ["/usr/local/bin/gateway"])
    assert len(gateways) == 3
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    upstream = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", nginx, re.M)
    assert sorted(upstream) == [(g, environment_of(compose["services"][g])["CG_PORT"]) for g in gateways]
    assert not re.search(r":9\d\d\d", nginx), "nginx must not proxy an admin port"
    import yaml
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    targets = {t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    expected = {f"{n}:{environment_of(s)['CG_ADMIN_PORT']}" for n, s in compose["services"].items()
                if is_ours(s) and "CG_ADMIN_PORT" in environment_of(s)}
    assert targets == expected


def test_the_image_is_built_in_cached_layers_and_runs_unprivileged():
    stage = final_image_stage()
    stages = stage["stages"]
    assert len(stages) >= 3, "planner, builder and runtime stages"
    text = DOCKERFILE.read_text()
    # Dependencies are cooked from the recipe before the sources are copied in.
    builder = next(part for part in text.split("\nFROM ")[1:] if "cargo chef cook" in part)
    assert builder.index("cargo chef cook") < builder.index("COPY . .") < builder.index("cargo build --release")
    assert "distroless" in stage["from"] or "slim" in stage["from"]
    user = stage["user"].split(":")[0]
    assert user.isdigit() and int(user) != 0, "a numeric, non-root user"
    # Only build output reaches the final image: no sources, no build context.
    assert stage["copy"] and all(c.startswith("--from=builder") for c in stage["copy"]), stage["copy"]
    assert stage["healthcheck"] == ["/usr/local/bin/codeguardians", "probe"]
    assert stage["env"]["CG_DATA_DIR"] == "/data" and stage["workdir"] == "/data"
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in ["target/", ".git/", ".env", "data/"]:
        assert entry in ignored, f".dockerignore must exclude {entry}"


def test_the_readme_quickstart_is_four_commands():
    commands = [line for line in quickstart().splitlines()
                if line.strip() and not line.startswith((" ", "CG="))]
    assert len(commands) == 4, commands
    assert "register" in commands[0] and "login" in commands[1]
    assert "api-keys" in commands[2] and "guards/process" in commands[3]
