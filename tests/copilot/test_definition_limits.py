"""copilot.yaml as hostile input: an alias bomb fails fast, in bounded memory, with an
error that names the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.copilot.definition import CopilotDefinitionError, load_definition
from tests.bombs import alias_bomb, run_capped

MEMORY_CAP = 900 * 2**20  # address space for the child: imports take about 260 MiB


def test_an_alias_bomb_in_copilot_yaml_is_refused_naming_the_file(tmp_path: Path) -> None:
    # six levels (531,441 values): small enough that a regression fails this test
    # instead of taking the machine's memory; the full bomb runs under a cap below
    bomb = alias_bomb(levels=6)
    (tmp_path / "copilot.yaml").write_text("name: bomb\ninstructions: hi\n" + bomb)
    with pytest.raises(CopilotDefinitionError) as caught:
        load_definition(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'copilot.yaml'}:")
    assert "refused" in message and "alias" in message


def test_the_bomb_is_refused_within_a_memory_cap(tmp_path: Path) -> None:
    """Before the limits, nine lines took 1.2 GB and 48 s; a child process under an
    address-space cap shows the refusal needs no such memory."""
    (tmp_path / "copilot.yaml").write_text("name: bomb\ninstructions: hi\n" + alias_bomb())
    printed = run_capped(
        """
        from pathlib import Path
        from pilothouse.copilot.definition import CopilotDefinitionError, load_definition
        try:
            load_definition(Path(sys.argv[1]))
        except CopilotDefinitionError as exc:
            print("refused:", exc)
        """,
        str(tmp_path),
        MEMORY_CAP,
    )
    assert "copilot.yaml" in printed and "alias" in printed
