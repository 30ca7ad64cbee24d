"""The artifact checks of ``make package`` (``infra.checks``), on dev and prod: the SAM template
transforms to CloudFormation, cfn-lint (informational rules on) finds only what
``infra/accepted/cfn-lint.json`` accepts, and checkov only what the stage's baseline holds. Each check
is also shown to fail on a template with a planted problem, and on an accepted finding that went away.

Each stage is packaged once per module (and per xdist worker that runs its tests). cfn-lint and checkov
each take seconds to start, so the module's runs on the packaged templates share processes
(``cfn_lint_runs``, ``checkov_verdicts``), each template still linted and scanned as on its own.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import json
import re
import subprocess  # checkov's interpreter, in the test of its launcher  # nosec B404
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.checks import (
    CHECKOV,
    CHECKOV_RUN,
    ROOT,
    CheckError,
    Finding,
    Verdict,
    baseline_pairs,
    baseline_path,
    cfn_lint_runs,
    checkov_verdict,
    checkov_verdicts,
    judge_lint,
    lint_run,
    lint_verdict,
    write_cloudformation,
)
from infra.lint_accepted import AcceptedLint, accepted_pairs, load_accepted
from infra.package import package
from infra.transform import ARTIFACT_BUCKET, TransformError, to_cloudformation

pytestmark = pytest.mark.integration

STAGES = ("dev", "prod")


@dataclass(frozen=True)
class Packaged:
    stage: str
    sam: Path  # build/<stage>/out/sam.json, beside deployment.zip
    cloudformation: Path  # the transformed template the checks write beside it


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Packaged]:
    """``packaged(stage)``: that stage packaged and transformed, once per module whatever test asks first."""
    built: dict[str, Packaged] = {}

    def get(stage: str) -> Packaged:
        if stage not in built:
            sam = package(stage, tmp_path_factory.mktemp(f"build-{stage}"))
            built[stage] = Packaged(stage, sam, write_cloudformation(sam))
        return built[stage]

    return get


def _load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def _write(path: Path, template: dict[str, Any]) -> Path:
    path.write_text(json.dumps(template, indent=2))
    return path


# -- aws-sam-translator ------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_given_the_package_when_transformed_then_it_is_plain_cloudformation_with_the_zip_in_s3(
    stage: str, packaged: Callable[[str], Packaged]
) -> None:
    # GIVEN the stage's SAM template and the zip beside it
    built = packaged(stage)
    sam = _load(built.sam)
    digest = hashlib.md5(built.sam.with_name("deployment.zip").read_bytes(), usedforsecurity=False).hexdigest()
    # WHEN aws-sam-translator has expanded it (the checks wrote cloudformation.json)
    cloudformation = _load(built.cloudformation)
    resources = cloudformation["Resources"]
    # THEN nothing of SAM is left, and every function's code is the zip uploaded as `aws cloudformation package` does
    assert "Transform" not in cloudformation
    assert not [name for name, r in resources.items() if r["Type"].startswith("AWS::Serverless::")]
    functions = {name: r for name, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    assert len(functions) == sum(r["Type"] == "AWS::Serverless::Function" for r in sam["Resources"].values())
    assert {json.dumps(f["Properties"]["Code"]) for f in functions.values()} == {
        json.dumps({"S3Bucket": ARTIFACT_BUCKET, "S3Key": digest})
    }
    # AND what SAM generates is there: the provisioned "live" alias the API invokes, and the API's stage
    alias = resources["APIHandlerAliaslive"]
    assert alias["Properties"]["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 2}
    assert resources["APIHandlerInvokePermission"]["Properties"]["FunctionName"] == {"Ref": "APIHandlerAliaslive"}
    assert [r for r in resources.values() if r["Type"] == "AWS::ApiGateway::Stage"]


def test_given_a_sam_template_with_a_broken_event_or_a_missing_zip_when_transformed_then_the_reason_is_given(
    packaged: Callable[[str], Packaged], tmp_path: Path
) -> None:
    # GIVEN the dev template with an SQS event that names no queue
    sam = _load(packaged("dev").sam)
    (tmp_path / "deployment.zip").write_bytes(b"zip")
    broken = copy.deepcopy(sam)
    broken["Resources"]["ProcessOrder"]["Properties"]["Events"]["ProcessOrderSqsEventSource"]["Properties"].pop("Queue")
    # WHEN it is transformed THEN the translator's reason names the event
    with pytest.raises(TransformError, match=r"ProcessOrderSqsEventSource.*Queue|Queue.*ProcessOrder"):
        to_cloudformation(_write(tmp_path / "sam.json", broken))
    # AND a template whose CodeUri names no file is refused before translating
    (tmp_path / "deployment.zip").unlink()
    with pytest.raises(TransformError, match=r"CodeUri './deployment.zip' names no file"):
        to_cloudformation(_write(tmp_path / "sam.json", sam))


# -- cfn-lint ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Linted:
    verdicts: dict[str, Verdict]  # lint_verdict of each stage's SAM template and CloudFormation
    plain_dev_sam: list[Finding]  # cfn-lint on dev's SAM template as a person runs it: nothing mandatory


@pytest.fixture(scope="module")
def linted(packaged: Callable[[str], Packaged]) -> Linted:
    """The module's cfn-lint runs on the packaged templates: lint_verdict's run of each stage (``lint_run``)
    and the plain one, from one cfn-lint process per set of mandatory rules (one while nothing is accepted)."""
    accepted = load_accepted()
    runs = [lint_run(stage, [packaged(stage).sam, packaged(stage).cloudformation], accepted) for stage in STAGES]
    *found, plain = cfn_lint_runs([*runs, ([packaged("dev").sam], ())])
    return Linted({stage: judge_lint(stage, f, accepted) for stage, f in zip(STAGES, found, strict=True)}, plain)


@pytest.mark.parametrize("stage", STAGES)
def test_given_the_package_when_cfn_lint_runs_with_informational_rules_then_only_accepted_findings_remain(
    stage: str, linted: Linted
) -> None:
    # GIVEN the stage's SAM template and the CloudFormation it expands to
    # WHEN cfn-lint runs on both, the accepted rules reported despite the template's directives
    verdict = linted.verdicts[stage]
    # THEN every finding is accepted in infra/accepted/cfn-lint.json, and every accepted one still occurs
    assert verdict.passed, verdict.report("cfn-lint", "infra/accepted/cfn-lint.json")


@pytest.fixture
def dev(packaged: Callable[[str], Packaged]) -> Packaged:
    return packaged("dev")


def test_given_the_dev_package_when_plain_cfn_lint_runs_then_the_template_s_own_directives_leave_no_finding(
    dev: Packaged, linted: Linted
) -> None:
    # GIVEN the SAM template make package writes, with cfn-lint's per-resource ignore_checks directive on
    # exactly the resources infra/accepted/cfn-lint.json accepts a finding on (none since issue 17)
    directives = {n for n, r in _load(dev.sam)["Resources"].items() if "cfn-lint" in r.get("Metadata", {})}
    assert directives == {resource for _, resource in accepted_pairs("dev", load_accepted())}
    # WHEN cfn-lint runs on it as a person would (informational rules on, nothing forced)
    findings = linted.plain_dev_sam
    # THEN it reports nothing
    assert not findings, "\n".join(map(str, findings))


def test_given_a_planted_stateful_resource_or_a_vanished_accepted_one_then_the_lint_check_fails(
    dev: Packaged, tmp_path: Path
) -> None:
    # GIVEN the dev template with a new table and no deletion policy (the directives copied as packaged)
    sam = _load(dev.sam)
    sam["Resources"]["PlantedTable"] = copy.deepcopy(sam["Resources"]["OrdersTable"])
    for key in ("Metadata", "DeletionPolicy", "UpdateReplacePolicy"):
        sam["Resources"]["PlantedTable"].pop(key, None)
    sam["Resources"]["PlantedTable"]["Properties"]["TableName"] = "planted"
    # AND an accepted finding on a resource the template no longer has
    accepted = [*load_accepted(), AcceptedLint("I3011", ("dev",), ("GoneTable",), "planted for the test")]
    # WHEN the lint check runs
    verdict = lint_verdict("dev", [_write(tmp_path / "sam.json", sam)], accepted)
    # THEN the new table is a new finding and the vanished one is stale: the check fails on both
    assert [(f.rule, f.resource) for f in verdict.new] == [("I3011", "PlantedTable")]
    assert verdict.stale == [("I3011", "GoneTable")]
    assert not verdict.passed


# -- checkov -----------------------------------------------------------------------------------------


def plant_checkov_findings(template: dict[str, Any]) -> dict[str, Any]:
    """dev's CloudFormation with three problems planted that its baseline must not accept."""
    resources = template["Resources"]
    # a public-read ACL on a bucket whose other findings the baseline accepts (it matches check and resource)
    resources["UploadsBucket"]["Properties"]["AccessControl"] = "PublicRead"
    # a new queue whose missing KMS key is skipped in the template itself, not in the baseline
    resources["PlantedQueue"] = {
        "Type": "AWS::SQS::Queue",
        "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_27", "comment": "planted"}]}},
        "Properties": {"QueueName": "planted"},
    }
    # a bucket the baseline accepts findings on, gone
    del resources["ReportsBucket"]
    return template


@pytest.fixture(scope="module")
def scanned(packaged: Callable[[str], Packaged], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Verdict]:
    """checkov_verdict of each stage's CloudFormation with its committed baseline, and of dev's with planted
    findings ("planted") with dev's: one scan each, in one checkov process (``checkov_verdicts``)."""
    planted = _write(
        tmp_path_factory.mktemp("planted") / "cloudformation.json",
        plant_checkov_findings(_load(packaged("dev").cloudformation)),
    )
    scans = {stage: (packaged(stage).cloudformation, baseline_path(stage)) for stage in STAGES}
    scans["planted"] = (planted, baseline_path("dev"))
    return dict(zip(scans, checkov_verdicts(list(scans.values())), strict=True))


@pytest.mark.parametrize("stage", STAGES)
def test_given_the_package_when_checkov_runs_with_the_committed_baseline_then_nothing_new_and_nothing_stale(
    stage: str, scanned: dict[str, Verdict]
) -> None:
    # GIVEN the CloudFormation the stage's stack will hold
    # WHEN checkov scans it with infra/accepted/<stage>.checkov.baseline
    verdict = scanned[stage]
    # THEN it finds nothing the baseline does not hold, and the baseline holds nothing it no longer finds
    assert verdict.passed, verdict.report("checkov", str(baseline_path(stage)))


def test_given_planted_findings_when_checkov_runs_with_the_dev_baseline_then_each_fails_the_check(
    scanned: dict[str, Verdict],
) -> None:
    # GIVEN dev's CloudFormation with the three problems of plant_checkov_findings
    # WHEN checkov runs on it with the committed dev baseline
    verdict = scanned["planted"]
    # THEN all three fail the check
    new = {(f.rule, f.resource) for f in verdict.new}
    assert ("CKV_AWS_20", "AWS::S3::Bucket.UploadsBucket") in new
    assert ("CKV_AWS_27", "AWS::SQS::Queue.PlantedQueue") in new
    assert ("CKV_AWS_18", "AWS::S3::Bucket.ReportsBucket") in verdict.stale
    assert not verdict.passed


# What checkov's interpreter runs: jsonpath parsed with ply's tables built (as bin/checkov does), then with
# infra/checkov_run.py's preloaded ones, ply refusing to build any.
PARSE_BOTH_WAYS = """
import json, runpy, sys
import ply.yacc
from bc_jsonpath_ng import parse
from bc_jsonpath_ng.ext import parse as parse_ext
expressions = sys.argv[2:]
built = [repr(f(e)) for e in expressions for f in (parse, parse_ext)]
loaded = runpy.run_path(sys.argv[1], run_name="checkov_run")["preload_parse_tables"]()
def refuse(*args, **kwargs):
    raise AssertionError("ply built tables")
ply.yacc.LRGeneratedTable = refuse
print(json.dumps({"loaded": loaded, "same": built == [repr(f(e)) for e in expressions for f in (parse, parse_ext)]}))
"""


def test_given_checkov_s_launcher_when_jsonpath_parses_then_ply_reads_its_preloaded_tables_and_parses_alike() -> None:
    # GIVEN checkov's interpreter and paths as checkov's CloudFormation graph parses them
    expressions = [
        "Properties.BucketName",
        "Resources.*.Properties.Tags[0].Key",
        "a.b[1:3]",
        "x..y",
        "$.Resources[*].Type",
    ]
    # WHEN each is parsed with the tables ply builds each time, and again after infra/checkov_run.py preloads them
    command = [str(CHECKOV.with_name("python")), "-P", "-c", PARSE_BOTH_WAYS, str(CHECKOV_RUN), *expressions]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)  # nosec B603
    # THEN both parsers' tables were preloaded, ply built none after that, and every parse is the same
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == {
        "loaded": ["bc_jsonpath_ng.parser_jsonpath_parsetab", "bc_jsonpath_ng.ext.parser_jsonpath_parsetab"],
        "same": True,
    }


def test_given_no_checkov_virtualenv_then_the_check_says_how_to_build_it(dev: Packaged, tmp_path: Path) -> None:
    # GIVEN a checkov path where nothing is installed
    missing = tmp_path / "bin" / "checkov"
    # WHEN the check runs THEN it fails as unable to run, saying how to install the tool (not as a finding)
    with pytest.raises(CheckError, match=r"`make setup` builds it from requirements-checkov.txt"):
        checkov_verdict(dev.cloudformation, baseline_path("dev"), checkov=missing)


# -- what is committed -------------------------------------------------------------------------------


def test_given_requirements_checkov_then_every_package_is_pinned_and_installed_as_pinned() -> None:
    # GIVEN checkov's own requirements file
    lines = [line.split("#", 1)[0].strip() for line in (ROOT / "requirements-checkov.txt").read_text().splitlines()]
    requirements = [Requirement(line) for line in lines if line]
    pins = {canonicalize_name(r.name): str(r.specifier) for r in requirements}
    # THEN each package is pinned to one version
    assert all(spec.startswith("==") and "," not in spec for spec in pins.values()), pins
    # AND .venv/checkov holds exactly those versions (make rebuilds it when the file changes)
    sites = [str(site) for site in CHECKOV.parent.parent.glob("lib/python*/site-packages")]
    assert sites, f"run `make setup`: no virtualenv at {CHECKOV.parent.parent}"
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions(path=sites)}
    drift = {name: (spec, installed.get(name)) for name, spec in pins.items() if spec != f"=={installed.get(name)}"}
    assert not drift, f"run `make setup`: .venv/checkov differs from requirements-checkov.txt: {drift}"


def _section(document: Path, heading: str) -> str:
    text = document.read_text()
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end != -1 else len(text)]


def test_given_the_checkov_baselines_then_docs_security_gives_each_accepted_check_a_reason() -> None:
    # GIVEN every check id either stage's baseline accepts
    accepted = {check for stage in STAGES for check, _ in baseline_pairs(baseline_path(stage))}
    # WHEN docs/security.md's section on the baseline is read, one table row per check id
    section = _section(ROOT / "docs" / "security.md", "## Accepted checkov findings")
    rows = {
        m.group(1): m.group(2).strip() for m in re.finditer(r"^\| `(CKV2?_AWS_\d+)` \|.*\| ([^|]*) \|$", section, re.M)
    }
    # THEN each accepted check has a row with a reason, and no row names a check no baseline holds
    assert set(rows) == accepted, f"missing: {sorted(accepted - set(rows))}, extra: {sorted(set(rows) - accepted)}"
    assert all(len(reason) > 20 for reason in rows.values()), rows


def test_given_the_accepted_cfn_lint_findings_then_docs_deploy_names_each_rule_and_the_file() -> None:
    section = _section(ROOT / "docs" / "deploy.md", "### cfn-lint results")
    for item in load_accepted():
        assert f"`{item.rule}`" in section, f"{item.rule} is accepted but not explained in docs/deploy.md"
    assert "infra/accepted/cfn-lint.json" in section
