"""``cmfleet build --check``: validate what a build would produce, without building or downloading.

For each module: the static rules and self-containment (``preflight``), the unit pyprojects read only their
own tags, the rendered recipes (versions from the tags, run requirements equal to the declared dependencies,
every imported shared library and the SDK listed, pins admitting the versions), the generated Dockerfile and
image reference against Foundry's rules. An already built ``DIR/<module>/<version>/`` is verified too: its
Dockerfile against the rules and every file against ``manifest.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cmfleet.artifacts.container import (
    base_image,
    dockerfile,
    image_reference,
    validate_dockerfile,
    validate_image_reference,
)
from cmfleet.artifacts.manifest import verify_manifest
from cmfleet.artifacts.preflight import ModulePlan, static_problems
from cmfleet.artifacts.recipe import recipe_or_problem, recipe_problems

#: The version recipes are rendered with when a dev build has no tag to read yet.
PLACEHOLDER_DEV_VERSION = "0.0.0.dev0"


def check_plan(plan: ModulePlan, out_dir: Path, shared: dict[str, Any] | None = None) -> list[str]:
    """Every problem a build of ``plan`` would hit (or that an existing build of it has). ``shared``: the check
    facts several plans share (``preflight.shared_check_facts``)."""
    problems = static_problems(plan, shared)
    versions = {u.distribution: plan.versions[u.name].expected or PLACEHOLDER_DEV_VERSION for u in plan.units}
    for unit in [plan.module, *plan.libs]:
        rendered, render_problems = recipe_or_problem(plan.repo, unit, versions[unit.distribution])
        problems += render_problems
        if rendered is not None:
            problems += recipe_problems(plan.repo, unit, rendered, versions[unit.distribution], versions, plan.python)
    module = plan.module
    version = versions[module.distribution]
    text = dockerfile(module.name, module.distribution, version, base_image(plan.python, plan.base_image_template))
    problems += [f"(generated) {p}" for p in validate_dockerfile(text)]
    problems += validate_image_reference(image_reference(module.name, version), module.name)
    built = out_dir / module.name / version
    if (built / "manifest.json").exists():
        problems += verify_manifest(built)
        if (built / "Dockerfile").exists():
            problems += [f"{built}/{p}" for p in validate_dockerfile((built / "Dockerfile").read_text("utf-8"))]
        if (built / "IMAGE").exists():
            ref = (built / "IMAGE").read_text(encoding="utf-8").strip()
            problems += [f"{built}/{p}" for p in validate_image_reference(ref, module.name)]
    return problems
