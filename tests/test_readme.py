"""The README's quickstart commands are the ones CI runs and the example exists."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _quickstart_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = section.split("```bash")[1:]
    return [line for block in blocks[:2] for line in block.split("```")[0].splitlines()
            if line.strip() and not line.startswith("#")]


def test_readme_has_exactly_two_quickstart_commands() -> None:
    commands = _quickstart_commands()
    assert len(commands) == 2
    assert "examples/quickstart.py" in commands[0]
    assert "pytest" in commands[1] and "[test]" in commands[1]
    assert (ROOT / "examples" / "quickstart.py").is_file()


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _quickstart_commands()[1] in ci
