"""Artifact checks of ``make package``: the SAM template transforms, lints clean and passes checkov.

For a stage, ``build/<stage>/out/sam.json`` is transformed to plain CloudFormation
(``infra.transform``; written beside it as ``cloudformation.json``). cfn-lint, informational rules
included, runs on both, and each finding must be one that ``infra/accepted/cfn-lint.json`` accepts
for the stage. checkov runs on the CloudFormation (what the stack holds: the SAM template's
findings and those on what SAM generates) with the stage's committed baseline,
``infra/accepted/<stage>.checkov.baseline`` (checkov's own ``--create-baseline`` format), and each
finding must be in it. An accepted finding that no longer occurs fails too, so the lists shrink as
findings are fixed, and the reasons in the docs stay true.

checkov pins boto3, packaging and networkx below ``requirements-dev.txt``, so it runs from its own
virtualenv (``.venv/checkov``, from ``requirements-checkov.txt``), which ``make setup`` and
``make test`` build, through ``infra/checkov_run.py`` (its command line, imported once for several
scans). It is run offline: no update check, no download, nothing uploaded.

    python -m infra.checks --stage dev                    # after make package STAGE=dev
    python -m infra.checks --stage dev --update-baseline  # rewrite the stage's checkov baseline
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess  # runs cfn-lint and checkov with fixed argument lists  # nosec B404
import sys
import tempfile
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.lint_accepted import AcceptedLint, accepted_pairs, load_accepted
from infra.transform import TransformError, to_cloudformation

ROOT = Path(__file__).resolve().parent.parent
ACCEPTED = ROOT / "infra" / "accepted"
CHECKOV = ROOT / ".venv" / "checkov" / "bin" / "checkov"
CHECKOV_RUN = ROOT / "infra" / "checkov_run.py"  # run by checkov's interpreter: several scans, one import
TIMEOUT_S = 300
OUTPUT_TAIL = 2000
CFN_LINT_FINDING_BITS = 2 | 4 | 8  # cfn-lint's exit status: errors, warnings, informational; anything else failed
# Never forwarded to checkov: with an API key it would upload the results to Prisma Cloud.
PLATFORM_VARIABLES = ("BC_API_KEY", "PRISMA_API_URL", "BC_SOURCE", "BC_REPO_ID")


class CheckError(Exception):
    """A check could not run (tool missing or crashed, template unreadable); not a finding."""


@dataclass(frozen=True)
class Finding:
    """One rule failed on one resource: ``I3011`` on ``OrdersTable``, ``CKV_AWS_117`` on ``AWS::Lambda::Function.X``."""

    rule: str
    resource: str
    template: str
    message: str = field(compare=False)

    def __str__(self) -> str:
        return f"{self.rule} on {self.resource} ({self.template}): {self.message}"


@dataclass(frozen=True)
class Verdict:
    """Findings nobody accepted, accepted ones that no longer occur (``(rule, resource)``), and how
    many findings were accepted."""

    new: list[Finding]
    stale: list[tuple[str, str]]
    accepted: int = 0

    @property
    def passed(self) -> bool:
        return not self.new and not self.stale

    def report(self, tool: str, accepted_in: str) -> str:
        lines = [f"{tool}: {self.accepted} accepted, {len(self.new)} new and {len(self.stale)} stale finding(s)"]
        lines += [f"  new: {finding}" for finding in self.new]
        lines += [
            f"  stale (no longer found, remove it from {accepted_in}): {rule} on {res}" for rule, res in self.stale
        ]
        return "\n".join(lines)


def baseline_path(stage: str) -> Path:
    return ACCEPTED / f"{stage}.checkov.baseline"


def write_cloudformation(sam_path: Path) -> Path:
    """Transform ``sam_path`` and write the result beside it as ``cloudformation.json``."""
    try:
        cloudformation = to_cloudformation(sam_path)
    except TransformError as exc:
        raise CheckError(f"{sam_path}: {exc}") from exc
    path = sam_path.with_name("cloudformation.json")
    path.write_text(json.dumps(cloudformation, indent=2) + "\n")
    return path


def _run(
    command: list[str], env: dict[str, str] | None = None, timeout: float = TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(  # noqa: S603 - fixed argv, no shell  # nosec B603
            command, capture_output=True, text=True, check=False, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired as exc:
        raise CheckError(f"{Path(command[0]).name} did not finish within {timeout:.0f} s") from exc


def _tail(done: subprocess.CompletedProcess[str]) -> str:
    return (done.stdout + done.stderr).strip()[-OUTPUT_TAIL:]


LintRun = tuple[Sequence[Path], Collection[str]]  # templates, and the rules reported despite ignore_checks


def cfn_lint(templates: Iterable[Path], mandatory: Iterable[str] = ()) -> list[Finding]:
    """cfn-lint's findings on ``templates``, informational rules included.

    ``mandatory`` rules are reported even where a template's ``ignore_checks`` directive silences
    them: how the checks see the accepted findings, and so notice one that went away.
    """
    return cfn_lint_runs([(list(templates), set(mandatory))])[0]


def cfn_lint_runs(runs: Sequence[LintRun]) -> list[list[Finding]]:
    """``cfn_lint`` of each run, from one cfn-lint process per distinct set of mandatory rules.

    Starting cfn-lint and loading its rules and schemas costs about 2 s a process, and linting one of
    ``make package``'s templates about 2.5 s. cfn-lint lints each template it is given on its own
    and names the file in each finding, so a template's findings do not depend on the others beside
    it; a template in several runs with the same mandatory rules is linted once.
    """
    by_rules: dict[frozenset[str], dict[str, list[Finding]]] = {}
    for templates, mandatory in runs:
        by_rules.setdefault(frozenset(mandatory), {}).update((str(template), []) for template in templates)
    for rules, by_file in by_rules.items():
        if not by_file:
            continue  # no template: cfn-lint would read one from its standard input
        for match in _cfn_lint_matches(list(by_file), rules):
            if match["Filename"] not in by_file:
                raise CheckError(f"cfn-lint reported on {match['Filename']}, which it was not given")
            by_file[match["Filename"]].append(_lint_finding(match))
    return [[f for t in templates for f in by_rules[frozenset(mandatory)][str(t)]] for templates, mandatory in runs]


def _cfn_lint_matches(templates: list[str], mandatory: frozenset[str]) -> list[dict[str, Any]]:
    found = Path(sys.executable).with_name("cfn-lint")
    command = [str(found) if found.exists() else "cfn-lint", "--format", "json", "--include-checks", "I"]
    if rules := sorted(mandatory):
        command += ["--mandatory-checks", *rules]
    done = _run([*command, "--", *templates])
    if done.returncode & ~CFN_LINT_FINDING_BITS:
        raise CheckError(f"cfn-lint failed (exit {done.returncode}):\n{_tail(done)}")
    try:
        return list(json.loads(done.stdout or "[]"))
    except json.JSONDecodeError as exc:
        raise CheckError(f"cfn-lint printed no JSON (exit {done.returncode}):\n{_tail(done)}") from exc


def _lint_finding(match: dict[str, Any]) -> Finding:
    path = [str(part) for part in match["Location"].get("Path") or []]
    resource = path[1] if len(path) >= 2 and path[0] == "Resources" else "/".join(path) or "(template)"
    return Finding(match["Rule"]["Id"], resource, Path(match["Filename"]).name, match["Message"])


def lint_verdict(stage: str, templates: Iterable[Path], accepted: list[AcceptedLint] | None = None) -> Verdict:
    """cfn-lint on ``templates`` of ``stage`` against the accepted findings (default: the committed file)."""
    accepted = load_accepted() if accepted is None else accepted
    return judge_lint(stage, cfn_lint(*lint_run(stage, templates, accepted)), accepted)


def lint_run(stage: str, templates: Iterable[Path], accepted: list[AcceptedLint]) -> LintRun:
    """The cfn-lint run of ``lint_verdict``: ``templates``, with the rules accepted on ``stage`` mandatory."""
    return list(templates), {rule for rule, _ in accepted_pairs(stage, accepted)}


def judge_lint(stage: str, findings: list[Finding], accepted: list[AcceptedLint]) -> Verdict:
    """``findings`` of ``lint_run(stage, ...)`` against what ``accepted`` accepts on ``stage``."""
    pairs = accepted_pairs(stage, accepted)
    new = sorted({f for f in findings if (f.rule, f.resource) not in pairs}, key=str)
    stale = sorted(pairs - {(f.rule, f.resource) for f in findings})
    return Verdict(new, stale, accepted=sum((f.rule, f.resource) in pairs for f in findings))


def _checkov_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in PLATFORM_VARIABLES}
    return {**env, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"}


def _checkov_scans(scans: Sequence[list[str]], checkov: Path) -> list[subprocess.CompletedProcess[str]]:
    """checkov with each argument list (offline), as ``checkov``'s own command line would run it, from
    one process of its interpreter: ``infra/checkov_run.py`` imports checkov once (2.5 s) and runs each
    scan in a process forked from that one. Each result's ``stderr`` is the whole run's."""
    if not checkov.exists():
        raise CheckError(f"checkov is not installed at {checkov}: `make setup` builds it from requirements-checkov.txt")
    offline = ["--framework", "cloudformation", "--skip-download", "--skip-results-upload", "--compact", "-o", "json"]
    with tempfile.TemporaryDirectory() as scratch:
        outputs = [Path(scratch) / f"scan-{number}.json" for number in range(len(scans))]
        listed = [{"argv": [*argv, *offline], "stdout": str(out)} for argv, out in zip(scans, outputs, strict=True)]
        (Path(scratch) / "scans.json").write_text(json.dumps(listed))
        command = [str(checkov.with_name("python")), "-P", str(CHECKOV_RUN), str(Path(scratch) / "scans.json")]
        done = _run(command, env=_checkov_env(), timeout=TIMEOUT_S * max(1, len(scans)))
        try:
            statuses = json.loads(done.stdout)
        except json.JSONDecodeError:
            statuses = None
        if not isinstance(statuses, list) or len(statuses) != len(scans):
            raise CheckError(f"checkov did not run (exit {done.returncode}):\n{_tail(done)}")
        return [
            subprocess.CompletedProcess(scan["argv"], status, out.read_text() if out.exists() else "", done.stderr)
            for scan, status, out in zip(listed, statuses, outputs, strict=True)
        ]


def checkov_verdict(template: Path, baseline: Path, checkov: Path = CHECKOV) -> Verdict:
    """checkov on ``template`` with ``baseline``: what it reports is new; what the baseline lists and
    checkov no longer finds is stale. A check skipped in the template itself (``Metadata.checkov``)
    counts as new, since checkov would hide it: accepted findings go in the baseline, where
    docs/security.md gives each its reason."""
    return checkov_verdicts([(template, baseline)], checkov)[0]


def checkov_verdicts(scans: Sequence[tuple[Path, Path]], checkov: Path = CHECKOV) -> list[Verdict]:
    """``checkov_verdict`` of each ``(template, baseline)``: one checkov scan each, one process for all."""
    for _, baseline in scans:
        if not baseline.exists():
            raise CheckError(f"no checkov baseline at {baseline}: create it with --update-baseline")
    arguments = [["-f", str(t), "--baseline", str(b), "--output-baseline-as-skipped"] for t, b in scans]
    return [
        _checkov_verdict(template, baseline, done)
        for (template, baseline), done in zip(scans, _checkov_scans(arguments, checkov), strict=True)
    ]


def _checkov_verdict(template: Path, baseline: Path, done: subprocess.CompletedProcess[str]) -> Verdict:
    results = _checkov_results(done)
    new = [_checkov_finding(check, template) for check in results["failed_checks"]] + inline_skips(template)
    matched = [
        (check["check_id"], check["resource"])
        for check in results["skipped_checks"]
        if check["check_result"].get("suppress_comment") == "baseline-skipped"
    ]
    return Verdict(sorted(new, key=str), sorted(baseline_pairs(baseline) - set(matched)), len(matched))


def inline_skips(template: Path) -> list[Finding]:
    """Each check a resource of ``template`` skips in its ``Metadata`` (checkov's or, older, bridgecrew's key)."""
    resources = json.loads(template.read_text()).get("Resources", {})
    return [
        Finding(str(skip.get("id", "?")), f"{resource['Type']}.{name}", template.name, "skipped in the template")
        for name, resource in resources.items()
        for key in ("checkov", "bridgecrew")
        for skip in resource.get("Metadata", {}).get(key, {}).get("skip", [])
    ]


def baseline_pairs(baseline: Path) -> set[tuple[str, str]]:
    """``{(check id, resource)}`` a checkov baseline accepts (it matches on these two, not on the file)."""
    data = json.loads(baseline.read_text())
    return {
        (check_id, finding["resource"])
        for entry in data["failed_checks"]
        for finding in entry["findings"]
        for check_id in finding["check_ids"]
    }


def _checkov_results(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The CloudFormation report of checkov's JSON output (a list when several frameworks ran)."""
    try:
        output = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise CheckError(f"checkov printed no JSON (exit {done.returncode}):\n{_tail(done)}") from exc
    reports = output if isinstance(output, list) else [output]
    report = next((r for r in reports if r.get("check_type") == "cloudformation"), None)
    if report is None or report["summary"].get("parsing_errors"):
        raise CheckError(f"checkov could not read the template (exit {done.returncode}):\n{_tail(done)}")
    return dict(report["results"])


def _checkov_finding(check: dict[str, Any], template: Path) -> Finding:
    return Finding(check["check_id"], check["resource"], template.name, check["check_name"])


def create_baseline(template: Path, baseline: Path, checkov: Path = CHECKOV) -> None:
    """Write checkov's own baseline of ``template`` (``--create-baseline``, which scans a directory) to ``baseline``."""
    with tempfile.TemporaryDirectory() as scratch:
        shutil.copy(template, Path(scratch) / "cloudformation.json")  # a stable "file" in the baseline
        [done] = _checkov_scans([["-d", scratch, "--create-baseline"]], checkov)
        created = Path(scratch) / ".checkov.baseline"
        if not created.exists():
            raise CheckError(f"checkov wrote no baseline (exit {done.returncode}):\n{_tail(done)}")
        baseline.write_text(created.read_text().rstrip("\n") + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Transform, cfn-lint and checkov the packaged template of a stage.")
    parser.add_argument("--stage", required=True)
    parser.add_argument("--build-root", type=Path, default=ROOT / "build")
    parser.add_argument("--update-baseline", action="store_true", help="rewrite the stage's checkov baseline")
    args = parser.parse_args(argv)
    sam_path = args.build_root / args.stage / "out" / "sam.json"
    if not sam_path.exists():
        print(f"{sam_path} does not exist: run `make package STAGE={args.stage}` first", file=sys.stderr)
        return 1
    try:
        cloudformation = write_cloudformation(sam_path)
        print(f"transformed: {cloudformation}")
        lint = lint_verdict(args.stage, [sam_path, cloudformation])
        print(lint.report("cfn-lint", "infra/accepted/cfn-lint.json"))
        if args.update_baseline:
            create_baseline(cloudformation, baseline_path(args.stage))
            print(f"checkov: wrote {baseline_path(args.stage).relative_to(ROOT)}; give each new entry its reason")
            return 0 if lint.passed else 1
        found = checkov_verdict(cloudformation, baseline_path(args.stage))
        print(found.report("checkov", str(baseline_path(args.stage).relative_to(ROOT))))
    except CheckError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0 if lint.passed and found.passed else 1


if __name__ == "__main__":
    sys.exit(main())
