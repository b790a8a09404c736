"""Every failed result says what kind of failure it was; old rows get the kind from their stage."""

from workbench.result import DID_NOT_RUN, did_run, error_kind_of


def test_old_rows_get_a_kind_from_their_stage():
    assert error_kind_of({"error": None}) is None
    assert error_kind_of({"error": "unavailable: no key", "error_stage": "check"}) == "unavailable"
    assert error_kind_of({"error": "unavailable: model missing", "error_stage": "load"}) == "unavailable"
    assert error_kind_of({"error": "load failed: OSError", "error_stage": "load"}) == "load-failed"
    assert error_kind_of({"error": "AudioError: x", "error_stage": "decode"}) == "bad-input"
    assert error_kind_of({"error": "RuntimeError: boom", "error_stage": "asr"}) == "failed"


def test_a_stored_kind_wins_and_did_run_follows_it():
    row = {"error": "LLMRequestError: 503", "error_stage": "formatter", "error_kind": "transient"}
    assert error_kind_of(row) == "transient" and did_run(row)
    assert not did_run({"error": "x", "error_stage": "check"})
    assert did_run({"error": None})
    assert DID_NOT_RUN == {"unavailable", "load-failed", "bad-input"}
