"""Reading docker-compose.yml, .env.example, the Dockerfile and the README the way Docker would.

Shared by the deployment tests: the compose file with its YAML merge keys resolved, `${VAR}`
interpolation from `.env.example` (what `cp .env.example .env` gives), the final image stage's
ENV/USER/WORKDIR/HEALTHCHECK, and the README's quickstart block.
"""

import json
import os
import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
README = ROOT / "README.md"

# The binaries of the image: what the compose file's commands may name under /usr/local/bin.
IMAGE_BIN = "/usr/local/bin/"

_VAR = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def env_example() -> dict:
    """KEY=value lines of .env.example (comments and blank lines skipped)."""
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    return values


def referenced_variables(text: str) -> set:
    """Names of the `${VAR}` / `$VAR` references in `text` (`$$` is a literal `$`)."""
    names = set()
    for m in _VAR.finditer(text):
        name = m.group(1) or m.group(4)
        if name:
            names.add(name)
    return names


def interpolate(value, env: dict):
    """Compose's interpolation of one value (recursively through lists and maps)."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m):
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3)
        current = env.get(name)
        if op in (":-", "-"):
            if current is None or (op == ":-" and current == ""):
                return arg
            return current
        if op in (":?", "?"):
            if current is None or (op == ":?" and current == ""):
                raise KeyError(f"{name} is required: {arg}")
            return current
        return current or ""

    return _VAR.sub(sub, value)


def load_compose() -> dict:
    """The compose file as YAML (merge keys resolved), not yet interpolated."""
    return yaml.safe_load(COMPOSE.read_text())


def resolved_compose(env: dict | None = None) -> dict:
    """The compose file interpolated with `env` (default: .env.example)."""
    return interpolate(load_compose(), env if env is not None else env_example())


def environment_of(service: dict) -> dict:
    """A service's `environment` as a map of strings."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def default_profile_services(compose: dict) -> dict:
    """Services `docker compose up` starts (those without a profile)."""
    return {n: s for n, s in compose["services"].items() if not s.get("profiles")}


def is_ours(service: dict) -> bool:
    """Runs the CodeGuardians image (built from ./Dockerfile)."""
    return "build" in service


def depends_on(service: dict) -> dict:
    """`depends_on` as {name: condition}."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {d: "service_started" for d in deps}
    return {d: (c or {}).get("condition", "service_started") for d, c in deps.items()}


def final_image_stage() -> dict:
    """ENV, USER, WORKDIR, HEALTHCHECK, FROM and COPY lines of the Dockerfile's last stage."""
    lines, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        if raw.lstrip().startswith("#") and not current:
            continue
        current += raw.rstrip("\\").strip() + " " if raw.rstrip().endswith("\\") else raw.strip()
        if not raw.rstrip().endswith("\\"):
            if current.strip():
                lines.append(current.strip())
            current = ""
    stages, stage = [], None
    for line in lines:
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            stage = {"from": rest, "env": {}, "copy": [], "user": None, "workdir": "/",
                     "healthcheck": None, "cmd": None}
            stages.append(stage)
        elif stage is None:
            continue
        elif word == "ENV":
            for pair in shlex.split(rest):
                k, _, v = pair.partition("=")
                stage["env"][k] = v
        elif word == "USER":
            stage["user"] = rest.strip()
        elif word == "WORKDIR":
            stage["workdir"] = rest.strip()
        elif word == "COPY":
            stage["copy"].append(rest)
        elif word == "HEALTHCHECK":
            cmd = rest[rest.index("CMD") + 3:].strip()
            stage["healthcheck"] = json.loads(cmd)
        elif word == "CMD":
            stage["cmd"] = json.loads(rest)
    return {"stages": stages, **stages[-1]}


def quickstart() -> str:
    """The shell block between the README's quickstart markers."""
    text = README.read_text()
    block = text.split("<!-- quickstart:start -->", 1)[1].split("<!-- quickstart:end -->", 1)[0]
    return block.strip().removeprefix("```sh").removesuffix("```").strip()


def bin_dir() -> Path:
    """Where `cargo test --workspace` put the debug binaries."""
    if os.environ.get("CG_BIN_DIR"):
        return Path(os.environ["CG_BIN_DIR"])
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    return target / "debug"
