"""cfn-lint findings accepted on the packaged templates, and the directives that tell cfn-lint so.

Each accepted finding is one rule on named resources of named stages, with its reason, in
``infra/accepted/cfn-lint.json``. ``make package`` writes cfn-lint's own per-resource directive
(``"Metadata": {"cfn-lint": {"config": {"ignore_checks": ["I3011"]}}}``) on exactly those resources,
so ``cfn-lint --include-checks I build/dev/out/sam.json`` run by hand agrees with ``make test``.
A directive silences one rule on one resource: a new resource, or another rule on a listed one, is
still reported. (``ignore_checks`` in a ``.cfnlintrc`` or the template's own ``Metadata`` would
silence the rule on every resource, the next table without a deletion policy included.)

    add_lint_directives(sam, "dev")     # before writing build/dev/out/sam.json
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCEPTED_LINT = Path(__file__).resolve().parent / "accepted" / "cfn-lint.json"
RULE_ID = re.compile(r"[EWI]\d{4}")


class AcceptedLintError(Exception):
    """The accepted-findings file is malformed: no reason, no resources, or an unknown rule id."""


@dataclass(frozen=True)
class AcceptedLint:
    """One cfn-lint rule accepted on some resources of some stages, for a reason."""

    rule: str
    stages: tuple[str, ...]
    resources: tuple[str, ...]
    reason: str


def load_accepted(path: Path = ACCEPTED_LINT) -> list[AcceptedLint]:
    """The accepted findings of ``path``, each checked to have a rule id, stages, resources and a reason."""
    entries = json.loads(path.read_text())["accepted"]
    accepted = []
    for number, entry in enumerate(entries, 1):
        item = AcceptedLint(
            rule=str(entry.get("rule", "")),
            stages=tuple(entry.get("stages", ())),
            resources=tuple(entry.get("resources", ())),
            reason=str(entry.get("reason", "")).strip(),
        )
        if not RULE_ID.fullmatch(item.rule) or not item.stages or not item.resources or not item.reason:
            raise AcceptedLintError(f"{path.name} entry {number} needs a rule id, stages, resources and a reason")
        accepted.append(item)
    return accepted


def accepted_pairs(stage: str, accepted: list[AcceptedLint]) -> set[tuple[str, str]]:
    """``{(rule, resource)}`` accepted on ``stage``."""
    return {(item.rule, resource) for item in accepted if stage in item.stages for resource in item.resources}


def add_lint_directives(template: dict[str, Any], stage: str, accepted: list[AcceptedLint] | None = None) -> None:
    """Add cfn-lint's ``ignore_checks`` directive to each resource of ``template`` with an accepted finding.

    Resources the template does not hold are left to the checks, which report such entries as stale.
    """
    resources = template.get("Resources", {})
    for rule, name in sorted(accepted_pairs(stage, load_accepted() if accepted is None else accepted)):
        if name in resources:
            config = resources[name].setdefault("Metadata", {}).setdefault("cfn-lint", {}).setdefault("config", {})
            ignored = config.setdefault("ignore_checks", [])
            if rule not in ignored:
                ignored.append(rule)
