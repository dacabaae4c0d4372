"""What `cmfleet build` writes for tagged modules, `--check` on it, and reproducibility."""

from __future__ import annotations

import os
import shutil
import zipfile

from buildrepo import RUNTIME_TAG, RUNTIME_VERSION, RUNTIME_WHEEL, git, manifest, run_build

from cmfleet.artifacts.container import parse_dockerfile, validate_dockerfile
from cmfleet.artifacts.manifest import sha256_of, verify_manifest


def test_hello_context_layout_and_manifest(released):
    out = released / "dist" / "hello" / "1.0.0"
    wheels = {p.name for p in (out / "wheels").glob("*.whl")}
    assert {"hello-1.0.0-py3-none-any.whl", RUNTIME_WHEEL} <= wheels
    # the image carries cmcore (its entrypoint) and never the toolkit nor what only the toolkit needs
    assert not [w for w in wheels if w.split("-")[0] in ("cmfleet", "click", "rich", "jinja2", "tomlkit", "jsonschema")]
    assert any(w.startswith("foundry_compute_modules-0.34") for w in wheels)
    # the module wheel carries app.py and its helper file as top-level modules, nothing else
    with zipfile.ZipFile(out / "wheels" / "hello-1.0.0-py3-none-any.whl") as zf:
        assert sorted(n for n in zf.namelist() if not n.startswith("hello-1.0.0.dist-info/")) == [
            "app.py",
            "greeting.py",
        ]
    # cmcore's wheel contains its entrypoint, its typing marker and the _version.py hatch-vcs wrote from the cmcore
    # tag (git-ignored, yet packaged: cmcore.__version__ reads it)
    with zipfile.ZipFile(out / "wheels" / RUNTIME_WHEEL) as zf:
        assert {"cmcore/entrypoint.py", "cmcore/py.typed", "cmcore/builtin/sdk_app.py"} <= set(zf.namelist())
        assert f"__version__ = '{RUNTIME_VERSION}'" in zf.read("cmcore/_version.py").decode()
    assert (out / "IMAGE").read_text() == "hello:1.0.0\n"
    assert "docker build --platform linux/amd64 -t hello:1.0.0 ." in (out / "README.md").read_text()
    data = manifest(out)
    assert data["module"] == {"name": "hello", "distribution": "hello", "version": "1.0.0"}
    assert data["dev"] is False and data["python"] == "3.11" and data["platform"] == "linux/amd64"
    assert data["shared"] == {"cmcore": RUNTIME_VERSION}
    assert data["sdk"]["name"] == "foundry-compute-modules" and data["sdk"]["version"].startswith("0.34")
    assert data["tags"] == {"hello": "hello/v1.0.0", "cmcore": RUNTIME_TAG}
    listed = {f["path"]: f["sha256"] for f in data["files"]}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(listed) == on_disk
    assert all(sha256_of(out / path) == digest for path, digest in listed.items())
    assert verify_manifest(out) == []
    requirements = (out / "wheels" / "requirements.txt").read_text().split()
    assert f"cmcore=={RUNTIME_VERSION}" in requirements and not any(r.startswith("hello==") for r in requirements)
    assert not [p for p in os.listdir(released / "dist") if p.startswith(".")]  # no temp folders left


def test_dockerfile_follows_foundry_rules(released):
    text = (released / "dist" / "hello" / "1.0.0" / "Dockerfile").read_text()
    assert validate_dockerfile(text) == []
    instructions = {i.keyword: i.args for i in parse_dockerfile(text)}
    assert instructions["FROM"] == "--platform=linux/amd64 python:3.11-slim-bookworm"
    assert instructions["USER"] == "5000"
    assert instructions["ENTRYPOINT"] == '["python", "-m", "cmcore.entrypoint", "/app/hello"]'
    assert "--no-index" in instructions["RUN"] and "--target /app/hello hello==1.0.0" in instructions["RUN"]


def test_wordcount_carries_its_shared_library_and_recipes(released):
    out = released / "dist" / "wordcount" / "2.0.0"
    assert (out / "wheels" / "textkit-1.2.0-py3-none-any.whl").exists()
    data = manifest(out)
    assert data["shared"] == {"textkit": "1.2.0", "cmcore": RUNTIME_VERSION}
    assert data["tags"] == {"textkit": "textkit/v1.2.0", "wordcount": "wordcount/v2.0.0", "cmcore": RUNTIME_TAG}
    recipe = (out / "recipes" / "wordcount" / "meta.yaml").read_text()
    assert "version: 2.0.0" in recipe and "- textkit >=0.0.0" in recipe and "- foundry-compute-modules >=0.34" in recipe
    assert "{{" not in recipe and "{%" not in recipe  # rendered, not a template
    lib_recipe = (out / "recipes" / "textkit" / "meta.yaml").read_text()
    assert "name: textkit" in lib_recipe and "version: 1.2.0" in lib_recipe


def test_check_passes_then_finds_tampering(released, tmp_path):
    proc = run_build(released, "--check", "hello", "wordcount")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "hello: OK" in proc.stdout and "wordcount: OK" in proc.stdout
    copy = tmp_path / "copy"
    shutil.copytree(released / "dist", copy)
    dockerfile = copy / "hello" / "1.0.0" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("USER 5000", "USER root"))
    proc = run_build(released, "--check", "--out", str(copy), "hello")
    assert proc.returncode == 1
    assert "Dockerfile: sha256 differs from the manifest" in proc.stdout
    assert "USER 'root' must be numeric and non-zero" in proc.stdout


def test_same_tag_builds_byte_identical(released, tmp_path):
    # A clone elsewhere, made later: other paths and file times, the same tag. SOURCE_DATE_EPOCH comes from
    # the tag's commit, so neither may leak into the wheels or the manifest.
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(released), str(clone))
    for path in (clone / "modules" / "hello").glob("*.py"):
        os.utime(path, (2_000_000_000, 2_000_000_000))
    proc = run_build(clone, "hello")
    assert proc.returncode == 0, proc.stderr
    first, second = released / "dist" / "hello" / "1.0.0", clone / "dist" / "hello" / "1.0.0"
    assert (first / "manifest.json").read_bytes() == (second / "manifest.json").read_bytes()
    for name in ("hello-1.0.0-py3-none-any.whl", RUNTIME_WHEEL):
        assert (first / "wheels" / name).read_bytes() == (second / "wheels" / name).read_bytes()
