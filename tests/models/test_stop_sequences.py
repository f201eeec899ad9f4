"""Stop sequences matched across token boundaries."""

from __future__ import annotations

from shared.adapters.helpers.stop_sequences import StopMatcher


def _run(stops: tuple[str, ...], tokens: list[str]) -> tuple[str, bool]:
    matcher = StopMatcher(stops)
    shown = ""
    for token in tokens:
        shown += matcher.feed(token)
        if matcher.matched:
            return shown, True
    return shown + matcher.flush(), False


def test_no_stops_passes_text_through() -> None:
    assert _run((), ["a", "b"]) == ("ab", False)


def test_stop_inside_one_token_cuts_before_it() -> None:
    assert _run(("###",), ["Hello", " wor###ld"]) == ("Hello wor", True)


def test_stop_split_across_tokens_is_never_shown_partially() -> None:
    matcher = StopMatcher(["</answer>"])
    assert matcher.feed("done </") == "done "
    assert matcher.feed("ans") == ""
    assert matcher.feed("wer> trailing") == ""
    assert matcher.matched


def test_held_prefix_is_released_when_it_turns_out_not_to_be_a_stop() -> None:
    assert _run(("STOP",), ["ST", "ART", " now"]) == ("START now", False)
    assert _run(("STOP",), ["end ST"]) == ("end ST", False)


def test_earliest_of_several_stops_wins() -> None:
    assert _run(("B", "A"), ["xxAyyB"]) == ("xx", True)
