"""The Dockerfile's static properties (no Docker engine is needed to check them; hack/kind-e2e.sh builds it)."""

from __future__ import annotations

import fnmatch
import json
import re

from mediagen_dev.paths import REPO_ROOT

ROOT = REPO_ROOT
DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def runtime_lineage() -> list[tuple[str, str]]:
    """The default target's instructions, with those of the stages it is built FROM (base first)."""
    by_name = {stage[0][1].split(" AS ")[-1]: stage for stage in stages()}
    chain: list[tuple[str, str]] = []
    stage = stages()[-1]
    while True:
        chain = stage + chain
        parent = stage[0][1].split(" AS ")[0]
        if parent not in by_name:
            return chain
        stage = by_name[parent]


def test_is_multi_stage_on_a_slim_python() -> None:
    args = dict(rest.split("=", 1) for keyword, rest in instructions() if keyword == "ARG" and "=" in rest)
    froms = [rest for keyword, rest in instructions() if keyword == "FROM"]
    assert len(froms) >= 2
    assert re.fullmatch(r"python:3\.1[12]-slim(@sha256:[0-9a-f]{64})?", args["PYTHON_IMAGE"])
    names = [base.split(" AS ")[-1] for base in froms]
    for base in froms:
        image = base.split(" AS ")[0]
        assert image == "${PYTHON_IMAGE}" or image in names, "every stage on the same Python, or on an earlier stage"
    assert froms[0].endswith(" AS build")
    assert names[-1] == "runtime", "the default target (the last stage) is the product image"


def test_runtime_runs_as_a_non_root_user() -> None:
    runtime = stages()[-1]
    users = [rest for keyword, rest in runtime if keyword == "USER"]
    assert users, "the runtime stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) == 65532 and gid == "65532", "numeric, so runAsNonRoot can verify it"


def test_runtime_copies_only_the_virtual_environment() -> None:
    runtime = stages()[-1]
    copies = [rest for keyword, rest in runtime if keyword in ("COPY", "ADD")]
    assert copies == ["--from=build /opt/venv /opt/venv"]


def test_the_product_image_gets_the_product_package_only() -> None:
    copied = [rest for keyword, rest in stages()[0] if keyword == "COPY"]
    assert "operator/mediagen ./operator/mediagen" in copied
    assert not any("mediagen_dev" in rest or rest.startswith("operator ") for rest in copied)
    runtime_runs = " ".join(rest for keyword, rest in stages()[0] if keyword == "RUN")
    assert "--extra" not in runtime_runs, "extras (moto) only in the demo image"


def test_no_remote_add_and_pinned_uv() -> None:
    for keyword, rest in instructions():
        assert not (keyword == "ADD" and re.search(r"https?://|git@", rest)), rest
    runs = " ".join(rest for keyword, rest in instructions() if keyword == "RUN")
    assert "uv==0.13.8" in runs and "--frozen" in runs and "--no-dev" in runs and "--no-editable" in runs
    bootstrap = (ROOT / "hack" / "uv.sh").read_text()
    assert "UV_VERSION=0.13.8\n" in bootstrap, "the image, make and CI use the same uv"
    assert "hack/uv.sh" in (ROOT / ".ci" / "run").read_text()


def test_read_only_root_filesystem_friendly_environment() -> None:
    env = " ".join(rest for keyword, rest in runtime_lineage() if keyword == "ENV")
    assert "HOME=/tmp" in env and "PYTHONDONTWRITEBYTECODE=1" in env
    build_env = " ".join(rest for keyword, rest in stages()[0] if keyword == "ENV")
    assert "UV_COMPILE_BYTECODE=1" in build_env, "bytecode is compiled at build time, never at run time"


def test_entrypoint_is_mediagen_and_the_default_command_the_operator() -> None:
    runtime = dict(stages()[-1])
    assert json.loads(runtime["ENTRYPOINT"]) == ["mediagen"]
    assert json.loads(runtime["CMD"])[0] == "operator"


def test_dockerignore_lets_in_only_what_the_build_copies() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "deny by default"

    def included(path: str) -> bool:
        keep = True
        for pattern in patterns:
            negated = pattern.startswith("!")
            pattern = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
                keep = negated
        return keep

    copied = [rest.split()[:-1] for keyword, rest in stages()[0] if keyword == "COPY"]
    for sources in copied:
        for source in sources:
            assert included(source.rstrip("/")), f"{source} is copied but ignored"
    for private in (
        ".venv",
        ".git",
        ".dev",
        "tests",
        "charts",
        ".env",
        "operator/mediagen/__pycache__/x.pyc",
        "operator/mediagen_dev/cli.py",
    ):
        assert not included(private), f"{private} would be sent to the build"
