"""The example GitHub workflow and the pre-commit hook: valid YAML, the jobs they promise, steps
that fail when they should, and only commands and flags that `autumn-sync --help` knows (the
commands are read from the YAML files, never listed here)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import EXAMPLES, run_cli

ROOT = Path(__file__).parent.parent
WORKFLOW = ROOT / "examples" / "ci" / "github-actions.yml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"
SCRIPT = Path(sys.executable).parent / "autumn-sync"
MARKER = "<!-- autumn-sync-plan -->"
SECRETS = ("AUTUMN_SYNC_DATABASE_URL", "STRIPE_API_KEY")
# GitHub runs `run:` with `shell: bash` as `bash --noprofile --norc -eo pipefail {0}`.
BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]


def load_workflow() -> dict[str, Any]:
    """The workflow, with its `on:` key back under its name (YAML 1.1 reads `on` as True)."""
    document: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    if True in document:
        document["on"] = document.pop(True)
    return document


def load_hooks() -> list[dict[str, Any]]:
    hooks: list[dict[str, Any]] = yaml.safe_load(HOOKS.read_text())
    return hooks


def steps(job: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = load_workflow()["jobs"][job]["steps"]
    return result


def step(job: str, name: str) -> dict[str, Any]:
    return next(s for s in steps(job) if s.get("name") == name)


def commands_in(script: str) -> list[list[str]]:
    """The arguments of every `autumn-sync …` command in a shell script: continuation lines
    joined, several commands per line (`;`, `&&`, `||`, `|`, `if …; then`), each command cut at
    the first operator or redirection."""
    found = []
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
        for index, token in enumerate(tokens):
            if token == "autumn-sync":
                found.append(_until_operator(tokens[index + 1 :]))
    return found


def _until_operator(tokens: list[str]) -> list[str]:
    for index, token in enumerate(tokens):
        if set(token) <= set("();<>|&"):
            return tokens[:index]
    return tokens


def workflow_commands() -> list[tuple[str, list[str]]]:
    """(job/step, arguments) of every autumn-sync command the workflow runs."""
    found = []
    for job_id, job in load_workflow()["jobs"].items():
        for number, job_step in enumerate(job["steps"], 1):
            where = f"{job_id}/{job_step.get('name', number)}"
            found += [(where, args) for args in commands_in(job_step.get("run", ""))]
    return found


def hook_commands() -> list[tuple[str, list[str]]]:
    """(hook id, arguments) of each pre-commit hook: its entry, then its default args."""
    found = []
    for hook in load_hooks():
        program, *entry_args = shlex.split(hook["entry"])
        assert program == "autumn-sync", hook
        found.append((f"pre-commit/{hook['id']}", [*entry_args, *hook.get("args", [])]))
    return found


def split_command(args: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(options before the command, the command's path such as ["plan"] or
    ["customer", "get-or-create"], the rest). Options before the command are written `--name`
    or `--name=value`: a value after a space would be taken for the command (and fail)."""
    first = next(i for i, arg in enumerate(args) if not arg.startswith("-"))
    path, rest = [args[first]], args[first + 1 :]
    while rest and not rest[0].startswith("-") and "\nCommands:" in help_text(tuple(path)):
        path.append(rest.pop(0))
    return args[:first], path, rest


def flags(args: list[str]) -> list[str]:
    """The option names among `args` (`--out`, `-f`; `--name=value` gives `--name`)."""
    return [a.split("=")[0] for a in args if re.match(r"^--?[A-Za-z]", a)]


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {*SECRETS, "STRIPE_API_BASE"}}
    return {**env, "NO_COLOR": "1"}


@cache
def help_text(path: tuple[str, ...]) -> str:
    """`autumn-sync PATH --help` (in this process: the installed script is run by the hook's
    tests and `test_cli`); fails if the command is unknown."""
    result = run_cli(*path, "--help")
    command = " ".join(["autumn-sync", *path])
    assert result.exit_code == 0, f"`{command}` does not exist: {result.output.strip()}"
    return result.stdout


def unknown_flags(args: list[str]) -> list[str]:
    """The options in `autumn-sync ARGS` that the help of their command does not list."""
    leading, path, rest = split_command(args)
    missing = [f for f in flags(leading) if not _listed(f, help_text(()))]
    return missing + [f for f in flags(rest) if not _listed(f, help_text(tuple(path)))]


def _listed(flag: str, help_output: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_output) is not None


COMMANDS = workflow_commands() + hook_commands()


@pytest.mark.parametrize(
    ("where", "args"), COMMANDS, ids=[f"{w}: {' '.join(a)}" for w, a in COMMANDS]
)
def test_each_command_and_flag_is_in_the_help(where: str, args: list[str]) -> None:
    assert unknown_flags(args) == [], f"{where} uses options autumn-sync does not have"


def test_each_job_runs_its_part_of_the_pipeline() -> None:
    used: dict[str, set[str]] = {}
    for where, args in workflow_commands():
        used.setdefault(where.split("/")[0], set()).add(" ".join(split_command(args)[1]))
    assert used == {"plan": {"validate", "plan"}, "apply": {"apply"}, "drift": {"drift"}}


def test_command_extraction_joins_continuations_and_splits_lists() -> None:
    script = 'x=1; autumn-sync plan -f "a b.yaml" \\\n  --out p.json > plan.md && autumn-sync drift'
    assert commands_in(script) == [["plan", "-f", "a b.yaml", "--out", "p.json"], ["drift"]]


def test_the_triggers() -> None:
    on = load_workflow()["on"]
    assert set(on) == {"pull_request", "push", "schedule", "workflow_dispatch"}
    assert on["pull_request"]["paths"] == on["push"]["paths"] == ["billing.yaml"]
    assert on["push"]["branches"] == ["main"]
    assert len(on["schedule"]) == 1 and len(on["schedule"][0]["cron"].split()) == 5
    assert set(on["workflow_dispatch"]["inputs"]["task"]["options"]) == {"drift", "plan-and-apply"}


def test_each_job_runs_on_its_events() -> None:
    jobs = load_workflow()["jobs"]
    assert "pull_request" in jobs["plan"]["if"] and "pull_request" not in jobs["apply"]["if"]
    assert "'push'" in jobs["apply"]["if"] and "refs/heads/main" in jobs["apply"]["if"]
    assert "'schedule'" in jobs["drift"]["if"] and "'push'" not in jobs["drift"]["if"]


def test_applies_never_overlap_and_run_in_a_protected_environment() -> None:
    apply_job = load_workflow()["jobs"]["apply"]
    assert apply_job["concurrency"]["group"]
    assert apply_job["concurrency"]["cancel-in-progress"] is False
    assert apply_job["environment"] == "billing-production"


def test_permissions_are_minimal() -> None:
    workflow = load_workflow()
    assert workflow["permissions"] == {"contents": "read"}
    writes = {
        job_id: {scope for scope, level in job.get("permissions", {}).items() if level == "write"}
        for job_id, job in workflow["jobs"].items()
    }
    assert writes == {"plan": {"pull-requests"}, "apply": set(), "drift": set()}


def test_secrets_reach_only_the_steps_that_need_them() -> None:
    for job in load_workflow()["jobs"].values():
        for job_step in job["steps"]:
            run = job_step.get("run", "")
            needs = any(split_command(a)[1] != ["validate"] for a in commands_in(run))
            env = job_step.get("env", {})
            expected = {name: f"${{{{ secrets.{name} }}}}" for name in SECRETS} if needs else {}
            assert {k: v for k, v in env.items() if k in SECRETS} == expected, job_step
            assert "secrets." not in run, job_step


def test_the_saved_plan_goes_from_the_plan_job_to_the_apply_job() -> None:
    plan_args = commands_in(step("plan", "Plan")["run"])[0]
    planfile = plan_args[plan_args.index("--out") + 1]
    upload = step("plan", "Keep the saved plan for the apply job")
    assert upload["uses"].startswith("actions/upload-artifact@")
    assert upload["with"]["path"] == planfile
    prefix = upload["with"]["name"].split("${{")[0]
    assert prefix in step("apply", "Find the plan reviewed on the pull request")["run"]
    assert step("apply", "Take the plan made by this run")["with"]["name"].startswith(prefix)
    applied = [a for a in commands_in(step("apply", "Apply")["run"]) if a[0] == "apply"]
    # one apply of the saved plan per consent (destroys, re-subscriptions): four in all
    assert [Path(a[1]).name for a in applied] == [planfile] * 4


def test_the_comment_step_updates_the_one_comment_with_the_marker() -> None:
    comment = step("plan", "Post or update the plan comment")
    assert comment["uses"].startswith("actions/github-script@")
    script = comment["with"]["script"]
    assert f"'{MARKER}'" in script
    for call in ("listComments", "updateComment", "createComment"):
        assert f"github.rest.issues.{call}" in script


def test_the_markdown_plan_starts_with_the_marker_the_workflow_looks_for(sqlite_url: str) -> None:
    result = run_cli(
        "plan", "-f", str(EXAMPLES / "billing.yaml"), "--format", "markdown", db=sqlite_url
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == MARKER


def run_step(
    job: str, name: str, tmp_path: Path, exit_code: int
) -> subprocess.CompletedProcess[str]:
    """Run a step's script as GitHub would, with a stand-in `autumn-sync` that prints a report
    and exits with `exit_code`."""
    fake = tmp_path / "bin" / "autumn-sync"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "## report from autumn-sync $1"\nexit {exit_code}\n')
    fake.chmod(0o755)
    script = tmp_path / "step.sh"
    script.write_text(step(job, name)["run"])
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"}
    env["GITHUB_STEP_SUMMARY"] = str(tmp_path / "summary.md")
    return subprocess.run(
        [*BASH, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True
    )


def test_run_steps_use_bash_with_errexit_and_pipefail() -> None:
    assert load_workflow()["defaults"]["run"]["shell"] == "bash"
    assert shutil.which("bash") is not None


@pytest.mark.parametrize(("exit_code", "outcome"), [(0, 0), (1, 1), (2, 2)])
def test_the_drift_step_fails_on_drift_and_keeps_the_report(
    tmp_path: Path, exit_code: int, outcome: int
) -> None:
    assert "continue-on-error" not in load_workflow()["jobs"]["drift"]
    assert "continue-on-error" not in step("drift", "Drift")
    result = run_step("drift", "Drift", tmp_path, exit_code)
    assert result.returncode == outcome
    assert (tmp_path / "summary.md").read_text() == "## report from autumn-sync drift\n"


@pytest.mark.parametrize(("exit_code", "outcome"), [(0, 0), (1, 1)])
def test_the_plan_step_fails_when_plan_fails(tmp_path: Path, exit_code: int, outcome: int) -> None:
    result = run_step("plan", "Plan", tmp_path, exit_code)
    assert result.returncode == outcome
    assert (tmp_path / "plan.md").read_text() == "## report from autumn-sync plan\n"


def test_the_hook_is_a_python_hook_on_the_billing_file() -> None:
    (hook,) = load_hooks()
    assert {"id", "name", "entry", "language"} <= set(hook)
    assert hook["id"] == "autumn-sync-validate"
    assert hook["language"] == "python" and hook["pass_filenames"] is False
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert shlex.split(hook["entry"])[0] in scripts
    matches = ["billing.yaml", "billing.yml", "config/billing.yaml", "a/b/billing.yml"]
    others = ["billing.yaml.orig", "mybilling.yaml", "billing.json", "billing/plans.yaml"]
    assert [p for p in matches + others if re.search(hook["files"], p)] == matches


def run_hook(directory: Path) -> subprocess.CompletedProcess[str]:
    """The hook as pre-commit runs it: entry, then args, from the repository's root."""
    (hook,) = load_hooks()
    program, *entry_args = shlex.split(hook["entry"])
    command = [str(SCRIPT.parent / program), *entry_args, *hook["args"]]
    return subprocess.run(command, cwd=directory, capture_output=True, text=True, env=cli_env())


def test_the_hook_passes_the_example(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "billing.yaml", tmp_path / "billing.yaml")
    result = run_hook(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("billing.yaml is valid: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["billing.yaml"]


def test_the_hook_fails_a_broken_file(tmp_path: Path) -> None:
    text = "version: 1\nfeatures:\n  messages: {name: Messages, type: metred}\n"
    (tmp_path / "billing.yaml").write_text(text)
    result = run_hook(tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("billing.yaml:3:")
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["billing.yaml"]


def test_the_readme_config_uses_the_hook_this_repository_offers() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, flags=re.DOTALL)
    configs = [yaml.safe_load(b) for b in blocks if "autumn-sync-validate" in b]
    assert len(configs) == 1
    (repo,) = configs[0]["repos"]
    assert {"repo", "rev"} <= set(repo)
    assert [h["id"] for h in repo["hooks"]] == [h["id"] for h in load_hooks()]
    assert str(WORKFLOW.relative_to(ROOT)) in readme
