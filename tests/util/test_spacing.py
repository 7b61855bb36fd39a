"""Text tidied after a removal (util/spacing.py): the one tidy both free-text
removals use (copilot/scripts_used.py's stray scripts, copilot/argument_words.py's
identifiers nobody gave)."""

from __future__ import annotations

from pilothouse.util.spacing import tidied


def test_runs_of_spaces_close_up_and_no_space_stays_before_a_closing_mark() -> None:
    assert tidied("Monitor  flickers , screen .") == "Monitor flickers, screen."
    assert tidied(" Dell  monitor flickers (model ) ") == "Dell monitor flickers (model)"
    assert tidied("Is it late ? \tYes !") == "Is it late? Yes!"


def test_text_without_a_gap_is_unchanged_and_opening_brackets_keep_their_space() -> None:
    assert tidied("See (page 2): done.") == "See (page 2): done."
    assert tidied("line one\nline two") == "line one\nline two"
