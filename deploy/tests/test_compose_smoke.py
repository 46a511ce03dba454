"""docker-compose.yml run without a Docker engine, to prove the environment in the file is complete.

Each compose service becomes a network namespace on a private bridge; `/etc/netns/<ns>/hosts`
(which `ip netns exec` puts over /etc/hosts) names every other service as compose's DNS would, so
the three gateways all listen on :8000 as the file says. Our services run with exactly the
command and environment the file gives them (interpolated from .env.example, over the image's
ENV), as the image's user, in the image's WORKDIR, with every mount read-only except their data
folder (`read_only: true` plus the /data volume). Backends are local stand-ins: PostgreSQL 15
initialised with the file's user, password and database; `redis-server` with the file's command;
moto for MinIO (the bucket `minio-init` would make is made here, and MinIO's `mc ready` check is
an HTTP request); Debian's nginx with the file's deploy/nginx.conf. `depends_on` conditions are
waited for by running the file's own health checks in each namespace. Then the README quickstart
runs through nginx.

Needs root (namespaces, mounts), iproute2, util-linux, PostgreSQL 15, redis-server, moto_server,
nginx, curl and jq, and the debug binaries of `cargo test --workspace`. Everything it starts is
stopped and removed, also when it fails.
"""

import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from composefile import (
    IMAGE_BIN, ROOT, bin_dir, default_profile_services, depends_on, environment_of,
    final_image_stage, is_ours, quickstart, resolved_compose,
)

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("15/bin"))), None)
DEADLINE_SECS = 90
REQUIRED = os.environ.get("CG_TEST_REQUIRE_BACKENDS") == "1"


def missing_prerequisites():
    missing = [t for t in ["ip", "unshare", "setpriv", "redis-server", "moto_server", "nginx",
                           "curl", "jq", "runuser"] if not shutil.which(t)]
    if PG_BIN is None:
        missing.append("PostgreSQL 15")
    if os.geteuid() != 0:
        missing.append("root")
    for name in ["gateway", "tokenguard", "trustguard", "contextguard", "biasguard", "healthguard",
                 "codeguardians"]:
        if not (bin_dir() / name).is_file():
            missing.append(f"{bin_dir() / name} (run `cargo test --workspace`)")
    return missing


def wait_for(what, check, deadline):
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


class Stack:
    """The namespaces, bridge, processes and files of one run; `close` removes them all."""

    def __init__(self):
        self.run_id = os.getpid() % 10000
        self.prefix = f"cgs{self.run_id}"
        self.bridge = f"cgb{self.run_id}"
        self.work = Path(tempfile.mkdtemp(prefix="cg-compose-smoke-"))
        self.work.chmod(0o755)
        self.namespaces, self.processes, self.ips = [], {}, {}
        self.subnet = self._free_subnet()
        self.bridge_up = False

    def _free_subnet(self):
        routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
        for i in range(200):
            a, b = 200 + (self.run_id + i) % 50, (self.run_id // 50 + i) % 250
            prefix = f"10.{a}.{b}."
            if prefix not in routes:
                return prefix
        raise AssertionError("no free private subnet for the test bridge")

    def sh(self, *args, **kwargs):
        return subprocess.run(list(args), check=True, capture_output=True, text=True, **kwargs)

    def network(self, names):
        """A bridge, and one namespace per service joined to it, each resolving the others."""
        self.sh("ip", "link", "add", self.bridge, "type", "bridge")
        self.bridge_up = True
        self.sh("ip", "addr", "add", f"{self.subnet}1/24", "dev", self.bridge)
        self.sh("ip", "link", "set", self.bridge, "up")
        for i, name in enumerate(names):
            self.ips[name] = f"{self.subnet}{10 + i}"
        hosts = "127.0.0.1 localhost\n" + "".join(f"{ip} {n}\n" for n, ip in self.ips.items())
        for i, name in enumerate(names):
            ns = self.ns(name)
            self.sh("ip", "netns", "add", ns)
            self.namespaces.append(ns)
            etc = Path("/etc/netns") / ns
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text(hosts)
            host_end = f"cv{self.run_id}x{i}"
            self.sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns)
            self.sh("ip", "link", "set", host_end, "master", self.bridge, "up")
            self.sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{self.ips[name]}/24", "dev", "eth0")
            self.sh("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
            self.sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")

    def ns(self, name):
        return f"{self.prefix}-{name}"

    def start(self, name, argv, env=None, cwd=None):
        log = open(self.work / f"{name}.log", "ab")
        self.processes[name] = subprocess.Popen(
            ["ip", "netns", "exec", self.ns(name), *argv], env=env if env is not None else os.environ,
            cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        return self.processes[name]

    def run_in(self, name, argv, env=None, timeout=10):
        return subprocess.run(["ip", "netns", "exec", self.ns(name), *argv], env=env,
                              capture_output=True, text=True, timeout=timeout)

    def logs(self):
        out = []
        for path in sorted(self.work.glob("*.log")):
            out.append(f"--- {path.name}\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(out)

    def stop(self, name, grace):
        """SIGTERM, then SIGKILL after `grace` seconds; the exit status."""
        proc = self.processes[name]
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        return proc.returncode

    def close(self):
        for proc in self.processes.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)
        if self.bridge_up:
            subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        shutil.rmtree(self.work, ignore_errors=True)


def duration(text, default):
    text = str(text or default)
    return float(text[:-1]) * (60 if text.endswith("m") else 1) if text[-1] in "sm" else float(text)


class Compose:
    """Runs the services of the compose file in a Stack."""

    def __init__(self, stack, compose):
        self.stack, self.compose = stack, compose
        self.services = default_profile_services(compose)
        self.image = final_image_stage()
        self.bin = bin_dir()
        self.uid, _, self.gid = self.image["user"].partition(":")
        self.data = {}
        self.done = set()

    def host_path(self, word):
        return str(self.bin / word[len(IMAGE_BIN):]) if word.startswith(IMAGE_BIN) else word

    def container_env(self, name):
        """The image's ENV under the service's `environment`, the data folder mapped."""
        env = {**self.image["env"], **environment_of(self.services[name])}
        env = {k: (str(self.data[name]) if v == self.image["env"].get("CG_DATA_DIR") and k == "CG_DATA_DIR" else v)
               for k, v in env.items()}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        return env

    def data_dir(self, name):
        path = self.stack.work / "volumes" / name
        path.mkdir(parents=True, exist_ok=True)
        self.data[name] = path
        return path

    def start(self, name):
        service = self.services[name]
        image = service.get("image", "")
        if is_ours(service):
            self.start_ours(name, service)
        elif image.startswith("postgres:"):
            self.start_postgres(name, service)
        elif image.startswith("redis:"):
            self.stack.start(name, [self.host_path(w) for w in service["command"]],
                             cwd=self.data_dir(name))
        elif image.startswith("minio/minio"):
            self.stack.start(name, ["moto_server", "-H", "0.0.0.0", "-p", "9000"], cwd=self.data_dir(name))
        elif image.startswith("minio/mc"):
            self.make_bucket(name, service)
        elif image.startswith("nginx"):
            self.start_nginx(name, service)
        else:
            raise AssertionError(f"no local stand-in for {name} ({image})")

    def start_ours(self, name, service):
        data = self.data_dir(name)
        os.chown(data, int(self.uid), int(self.gid or self.uid))
        env = self.container_env(name)
        argv = [self.host_path(w) for w in service["command"]]
        # `read_only: true`: every mount read-only but the data folder (the /data volume).
        remount = "" if not service.get("read_only") else (
            f"mount --bind {shlex.quote(str(data))} {shlex.quote(str(data))}; "
            "awk '{print $5}' /proc/self/mountinfo | while read -r m; do "
            f"case \"$m\" in /proc*|/sys*|/dev*|{shlex.quote(str(data))}) continue;; esac; "
            "mount -o remount,bind,ro \"$m\" 2>/dev/null || true; done; ")
        script = (remount + f"cd {shlex.quote(str(data))} && exec setpriv --reuid={self.uid} "
                  f"--regid={self.gid or self.uid} --clear-groups -- env -i "
                  + " ".join(shlex.quote(f"{k}={v}") for k, v in env.items()) + " "
                  + " ".join(shlex.quote(a) for a in argv))
        self.stack.start(name, ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script])

    def start_postgres(self, name, service):
        env = environment_of(service)
        data = self.data_dir(name) / "pgdata"
        shutil.chown(data.parent, "postgres", "postgres")
        pwfile = data.parent / "pw"
        pwfile.write_text(env["POSTGRES_PASSWORD"])
        shutil.chown(pwfile, "postgres", "postgres")
        self.stack.sh("runuser", "-u", "postgres", "--", str(PG_BIN / "initdb"), "-D", str(data),
                      "-U", env["POSTGRES_USER"], f"--pwfile={pwfile}", "--auth-host=scram-sha-256",
                      "--auth-local=trust")
        with open(data / "pg_hba.conf", "a") as hba:
            hba.write("host all all 0.0.0.0/0 scram-sha-256\n")
        self.stack.start(name, ["runuser", "-u", "postgres", "--", str(PG_BIN / "postgres"), "-D", str(data),
                                "-c", "listen_addresses=*", "-c", f"unix_socket_directories={data.parent}",
                                "-c", "fsync=off"])
        self.postgres_db = (name, env)

    def make_bucket(self, name, service):
        """What `minio-init` does with mc: create the bucket (once MinIO answers)."""
        import boto3
        env = environment_of(service)
        s3 = boto3.client("s3", endpoint_url=f"http://{self.stack.ips['minio']}:9000",
                          aws_access_key_id=env["MINIO_ROOT_USER"],
                          aws_secret_access_key=env["MINIO_ROOT_PASSWORD"], region_name="us-east-1")
        s3.create_bucket(Bucket=env["S3_BUCKET_NAME"])
        self.done.add(name)

    def start_nginx(self, name, service):
        config = next(v.split(":")[0] for v in service["volumes"] if ":/etc/nginx/nginx.conf" in v)
        config = (ROOT / config).resolve()
        # nginx's temporary files go to a /tmp of its own.
        script = ("mount -t tmpfs tmpfs /tmp && exec nginx -c " + shlex.quote(str(config))
                  + " -g 'daemon off;'")
        self.stack.start(name, ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script])

    def healthy(self, name):
        """Run the service's own health check in its namespace."""
        service = self.services[name]
        test = service.get("healthcheck", {}).get("test")
        if not test:
            return self.running(name)
        if test[:3] == ["CMD", "mc", "ready"]:
            return self.http_ok(f"http://{self.stack.ips[name]}:9000/")
        env = self.container_env(name) if is_ours(service) else {**os.environ, **environment_of(service)}
        if test[0] == "CMD-SHELL":
            argv = ["/bin/sh", "-c", test[1]]
        else:
            argv = [self.host_path(w) for w in test[1:]]
        try:
            return self.stack.run_in(name, argv, env=env, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def running(self, name):
        proc = self.stack.processes.get(name)
        if proc is not None and proc.poll() is not None and proc.returncode != 0:
            raise AssertionError(f"{name} exited with {proc.returncode}:\n{self.stack.logs()}")
        return proc is not None and proc.poll() is None

    def completed(self, name):
        if name in self.done:
            return True
        proc = self.stack.processes.get(name)
        if proc is None or proc.poll() is None:
            return False
        assert proc.returncode == 0, f"{name} exited with {proc.returncode}:\n{self.stack.logs()}"
        return True

    @staticmethod
    def http_ok(url):
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status < 500
        except Exception:
            return False

    def up(self, deadline):
        """Start every service once its `depends_on` conditions hold, in the file's order."""
        pending = list(self.services)
        started = set()
        while pending:
            progressed = False
            for name in list(pending):
                ready = True
                for dep, condition in depends_on(self.services[name]).items():
                    if dep not in started:
                        ready = False
                    elif condition == "service_healthy" and not self.healthy(dep):
                        ready = False
                    elif condition == "service_completed_successfully" and not self.completed(dep):
                        ready = False
                    elif condition == "service_started" and not self.running(dep):
                        ready = False
                    if not ready:
                        break
                if ready:
                    self.start(name)
                    started.add(name)
                    pending.remove(name)
                    progressed = True
                    if name == "postgres":
                        wait_for("postgres", lambda: self.healthy("postgres"), deadline)
                        self.create_database()
            if not progressed:
                if time.monotonic() > deadline:
                    raise AssertionError(f"never started: {pending}\n{self.stack.logs()}")
                time.sleep(0.25)

    def create_database(self):
        """What the postgres image does with POSTGRES_DB on first start."""
        name, env = self.postgres_db
        if env["POSTGRES_DB"] == "postgres":
            return
        self.stack.run_in(name, ["psql", "-h", "127.0.0.1", "-U", env["POSTGRES_USER"], "-d", "postgres",
                                 "-c", f'CREATE DATABASE "{env["POSTGRES_DB"]}"'],
                          env={**os.environ, "PGPASSWORD": env["POSTGRES_PASSWORD"]})


@pytest.fixture
def stack():
    missing = missing_prerequisites()
    if missing:
        if REQUIRED:
            pytest.fail(f"the compose smoke test needs: {', '.join(missing)}")
        pytest.skip(f"needs: {', '.join(missing)}")
    s = Stack()
    previous = signal.signal(signal.SIGTERM, lambda *_: (s.close(), os._exit(1)))
    try:
        yield s
    finally:
        s.close()
        signal.signal(signal.SIGTERM, previous)


def metrics(url):
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.read().decode()


def test_the_compose_file_runs_and_serves_the_quickstart_through_nginx(stack):
    compose = resolved_compose()
    runner = Compose(stack, compose)
    services = runner.services
    stack.network(list(services))
    deadline = time.monotonic() + DEADLINE_SECS
    runner.up(deadline)
    for name in services:
        if services[name].get("healthcheck"):
            wait_for(f"{name} healthy", lambda n=name: runner.healthy(n), deadline)
        elif services[name].get("restart") == "no" or "minio-init" == name:
            wait_for(f"{name} done", lambda n=name: runner.completed(n), deadline)

    # The image's own HEALTHCHECK (probe on $CG_PORT) passes in every service container.
    for name, service in services.items():
        if is_ours(service) and name != "migrate":
            argv = [runner.host_path(w) for w in runner.image["healthcheck"]]
            result = stack.run_in(name, argv, env=runner.container_env(name))
            assert result.returncode == 0, f"{name}: {result.stderr}"

    # The README's quickstart, as written, through nginx.
    nginx = f"http://{stack.ips['nginx']}:80"
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", quickstart()],
                            env={**os.environ, "CG": nginx}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr + stack.logs()
    answers, text, decoder = [], result.stdout, json.JSONDecoder()
    while text.strip():
        text = text.lstrip()
        answer, end = decoder.raw_decode(text)
        answers.append(answer)
        text = text[end:]
    verdict = answers[-1]
    assert verdict["success"] is True and verdict["service_used"] == "biasguard", verdict

    # nginx spreads requests over the three gateways and never exposes an admin route.
    for _ in range(6):
        assert Compose.http_ok(f"{nginx}/health")
    gateways = [n for n, s in services.items() if s.get("command") == ["/usr/local/bin/gateway"]]
    for name in gateways:
        admin = environment_of(services[name])["CG_ADMIN_PORT"]
        text = metrics(f"http://{stack.ips[name]}:{admin}/metrics")
        assert 'route="/health",status="200"' in text, f"{name} served nothing through nginx"
    code = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{nginx}/metrics"],
                          capture_output=True, text=True).stdout
    assert code == "404", code

    # Prometheus' targets (deploy/prometheus.yml) answer on the admin ports.
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    for job in prometheus["scrape_configs"]:
        for target in job["static_configs"][0]["targets"]:
            host, port = target.split(":")
            assert "http_requests_total" in metrics(f"http://{stack.ips[host]}:{port}/metrics"), target

    # Every service stops cleanly on SIGTERM within its stop_grace_period.
    for name, service in services.items():
        if is_ours(service) and name != "migrate":
            grace = duration(service.get("stop_grace_period"), "10s")
            assert stack.stop(name, grace) == 0, f"{name} did not stop cleanly:\n{stack.logs()}"
