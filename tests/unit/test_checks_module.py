"""The Go tools module behind the GitOps and alert tests pins what the README says, and builds all three tools in one
`go build` (hack/build-checks.sh)."""

from __future__ import annotations

import re

from mediagen_dev.checks import BINARIES, BUILD_SCRIPT
from mediagen_dev.paths import HACK_DIR, REPO_ROOT

MODULE = HACK_DIR / "tools" / "checks"


def test_the_module_pins_the_tools_the_readme_names() -> None:
    go_mod = (MODULE / "go.mod").read_text()
    readme = (REPO_ROOT / "README.md").read_text()
    assert "github.com/argoproj/argo-cd/v3 v3.5.1" in go_mod and "Argo CD v3.5.1" in readme
    assert "github.com/prometheus/prometheus v0.316.0" in go_mod and "Prometheus 3.16.0" in readme
    assert re.search(r"sigs.k8s.io/cli-utils v0\.\d+\.\d+", go_mod)
    # Argo CD builds gitops-engine from its own tree (a replace that does not apply to a dependent module).
    assert "replace github.com/argoproj/argo-cd/gitops-engine =>" in go_mod
    assert (MODULE / "go.sum").is_file()


def test_one_go_build_makes_every_tool_the_tests_use() -> None:
    script = BUILD_SCRIPT.read_text()
    (build,) = re.findall(r"go build [^\n]*\n[^\n]*", script)
    assert "./kstatus ./argocd-health github.com/prometheus/prometheus/cmd/promtool" in build
    assert f"binaries=({' '.join(BINARIES)})" in script
