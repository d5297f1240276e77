"""The example's own unit tests, run by the starter workflow's lint-and-test job."""

from __future__ import annotations

from make_data import applications


def test_generated_data_is_deterministic() -> None:
    assert applications(50, seed=1).equals(applications(50, seed=1))


def test_both_classes_and_groups_present() -> None:
    frame = applications(500, seed=2)
    assert set(frame["approved"]) == {0, 1}
    assert set(frame["sex"]) == {"F", "M"}
