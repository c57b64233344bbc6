"""Which step size dt the authors' public code gives its prototypical (P) nets, commit by commit.

The authors' code (github.com/ernoult/updatesEPgradientsBPTT) steps a P net as s ← s + dt·(σ(…) − s)
(``EPdisc.stepper``). Its README's Table 1 P commands never set ``--dt``, so the dt they run is whatever
``EPdisc`` receives when ``--dt`` keeps its default. This script reads that from the repository's own
history (``git show`` of each commit that touched ``main.py`` or ``netClasses.py``; no code of theirs is
run or copied) and prints, per commit: ``EPdisc``'s constructor and its ``self.dt`` line, how ``main.py``
builds ``EPdisc``, ``--dt``'s default, whether the stepper uses ``self.dt``, whether ``EPdisc``'s other
methods and ``netFunctions.py`` (the training loop) equal the newest commit's, the README's P-2h command,
and the dt a P net gets from that command.

    git clone https://github.com/ernoult/updatesEPgradientsBPTT /tmp/authors   # full history
    python3 results/table1/authors_code_history.py --authors-code /tmp/authors
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def show(repo: Path, commit: str, path: str) -> str | None:
    try:
        return git(repo, "show", f"{commit}:{path}")
    except subprocess.CalledProcessError:
        return None


def class_body(source: str, name: str) -> str:
    """The text of ``class name`` up to the next top-level class."""
    m = re.search(rf"^class {name}\b.*?(?=^class |\Z)", source, re.S | re.M)
    return m.group(0) if m else ""


def dt_default(main: str) -> float | None:
    """``--dt``'s ``default=`` in main.py's parser."""
    m = re.search(r"'--dt'.*?default\s*=\s*([0-9.eE+-]+)", main, re.S)
    return float(m.group(1)) if m else None


def p2h_command(readme: str) -> str | None:
    """The README's Table 1 training command for P-2h (prototypical, two hidden layers of 512)."""
    lines = [ln.strip() for ln in readme.splitlines()
             if "--discrete" in ln and "--size_tab 10 512 512 784" in ln and "'train'" in ln]
    return lines[0] if lines else None


def without_init(body: str) -> str:
    """``EPdisc``'s methods other than ``__init__`` (what runs once the net is built)."""
    return re.sub(r"    def __init__.*?(?=\n    def )", "", body, count=1, flags=re.S)


def analyse(repo: Path, commit: str, head: str) -> dict[str, str]:
    main = show(repo, commit, "main.py") or ""
    classes = show(repo, commit, "netClasses.py") or ""
    head_body = class_body(show(repo, head, "netClasses.py") or "", "EPdisc")
    same_functions = show(repo, commit, "netFunctions.py") == show(repo, head, "netFunctions.py")
    readme = show(repo, commit, "README.md") or ""
    body = class_body(classes, "EPdisc")
    init = re.search(r"def __init__\(self[^)]*\)", body)
    assign = re.search(r"self\.dt\s*=\s*([^\n#]+)", body)
    stepper = re.search(r"def stepper.*?(?=\n    def )", body, re.S)
    calls = re.findall(r"EPdisc\((.*?)\)", main, re.S)
    p2h = p2h_command(readme)
    default = dt_default(main)

    # the dt a P net gets when --dt keeps its default
    got = "unknown"
    if assign and "args.dt" in assign.group(1):
        got = f"{default:g} (args.dt, --dt's default)" if default is not None else "args.dt"
    elif assign and init:
        sig = re.search(r"\bdt\s*=\s*([0-9.eE+-]+)", init.group(0))
        passes_dt = any(re.search(r"\bdt\b", c) for c in calls)
        if sig and not passes_dt:
            got = f"{float(sig.group(1)):g} (the constructor's default: main.py does not pass dt)"
        elif passes_dt:
            got = "what main.py passes"
    uses = bool(stepper and "self.dt" in stepper.group(0))
    return {
        "EPdisc.__init__": init.group(0) if init else "(not found)",
        "self.dt =": assign.group(1).strip() if assign else "(not found)",
        "main.py builds": "; ".join(" ".join(c.split()) for c in calls) or "(not found)",
        "--dt default": f"{default:g}" if default is not None else "(not found)",
        "stepper uses self.dt": str(uses),
        "EPdisc = HEAD's": f"{without_init(body) == without_init(head_body)} (every method but __init__)",
        "netFunctions = HEAD's": str(same_functions),
        "README P-2h command": p2h or "(no README at this commit, or no such line)",
        "P-2h command's dt": got if uses else f"{got}, but the stepper ignores it",
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--authors-code", type=Path, required=True, help="a git clone (with history) of their repository")
    args = ap.parse_args()
    repo = args.authors_code
    head = git(repo, "rev-parse", "HEAD").strip()
    log = git(repo, "log", "--reverse", "--date=short", "--format=%H %ad %s", "--", "main.py", "netClasses.py")
    print(f"authors' code: {repo} at commit {head}")
    for line in log.splitlines():
        commit, date, subject = line.split(" ", 2)
        print(f"\n{commit[:7]} {date} {subject}")
        for key, value in analyse(repo, commit, head).items():
            print(f"  {key:22s} {value}")
    # the README's P-2h command over the README's whole history (it was added after the first code upload)
    readme_log = git(repo, "log", "--reverse", "--date=short", "--format=%H %ad", "--", "README.md")
    commands: dict[str, list[str]] = {}
    for line in readme_log.splitlines():
        commit, date = line.split(" ", 1)
        cmd = p2h_command(show(repo, commit, "README.md") or "")
        commands.setdefault(cmd or "(none)", []).append(f"{commit[:7]} {date}")
    print(f"\nREADME.md's P-2h command over its {len(readme_log.splitlines())} versions:")
    for cmd, where in commands.items():
        print(f"  {cmd}\n    in {len(where)} versions, {where[0]} .. {where[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
