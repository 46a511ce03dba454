"""checkov on the Kubernetes manifests (as kustomize renders the base and both overlays; see
.checkov.yaml) and on the Dockerfile: every failed check must be justified, one row per check,
in docs/operations.md ("Security checks")."""

import json
import os
import re
import shutil
import subprocess
from functools import cache

import pytest

from composefile import ROOT

OPERATIONS = ROOT / "docs" / "operations.md"


def checkov():
    path = os.environ.get("CG_CHECKOV") or shutil.which("checkov")
    assert path, "checkov is not installed (.ci/run installs it in .ci/.venv-checkov)"
    return path


@cache
def run(args):
    result = subprocess.run(
        [checkov(), "--config-file", str(ROOT / ".checkov.yaml"), "-o", "json", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    # checkov prints one JSON document per framework; exit status 1 only means "some failed".
    assert result.returncode in (0, 1), result.stderr[-2000:]
    reports, text, decoder = [], result.stdout, json.JSONDecoder()
    while text.strip():
        text = text.lstrip()
        doc, end = decoder.raw_decode(text)
        reports.extend(doc if isinstance(doc, list) else [doc])
        text = text[end:]
    assert reports, result.stdout[-2000:] + result.stderr[-2000:]
    return reports


def justified():
    """Check ids with a justification row in docs/operations.md."""
    section = OPERATIONS.read_text().split("## Security checks", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `?(CKV2?_[A-Z0-9_]+)`? \| (.+?) \|", section, re.M)
    assert rows, "no justification table"
    return {check: why for check, why in rows if len(why.strip()) > 20}


@pytest.mark.parametrize("target", [("-d", "k8s"), ("-f", "Dockerfile")], ids=["k8s", "Dockerfile"])
def test_every_failed_check_is_justified(target):
    reports = run(target)
    checked = sum(r["summary"]["passed"] + r["summary"]["failed"] for r in reports)
    assert checked > 50, "checkov checked almost nothing"
    assert all(r["summary"]["parsing_errors"] == 0 for r in reports)
    failed = {}
    for r in reports:
        for f in r["results"].get("failed_checks", []):
            failed.setdefault(f["check_id"], set()).add(f["resource"])
    reasons = justified()
    unjustified = {k: sorted(v)[:3] for k, v in failed.items() if k not in reasons}
    assert not unjustified, f"failed checks without a justification in docs/operations.md: {unjustified}"


def test_kustomize_renders_every_overlay_for_checkov():
    """The k8s run covered the base and both overlays (not the raw fragments)."""
    reports = run(("-d", "k8s"))
    resources = {f["resource"] for r in reports
                 for f in r["results"].get("passed_checks", []) + r["results"].get("failed_checks", [])}
    for scope in ("base:", "overlay:overlays/dev:", "overlay:overlays/prod:"):
        assert any(r.startswith(scope) for r in resources), scope
