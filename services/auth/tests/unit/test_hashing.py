"""The size of the hashing queue and the Retry-After it advises."""

from __future__ import annotations

from auth_service.domain.passwords import Passwords
from auth_service.service_layer.hashing import Hashing


def _passwords(measured_seconds: float) -> Passwords:
    passwords = Passwords(time_cost=1, memory_kib=1024, parallelism=1)
    passwords.measured_seconds = measured_seconds
    return passwords


def test_queue_holds_what_the_slots_clear_in_about_a_second() -> None:
    # 4 slots at 0.2 s a hash clear 20 a second.
    assert Hashing(_passwords(0.2), 4).queue_limit == 20
    assert Hashing(_passwords(0.2), 4, queue_seconds=0.5).queue_limit == 10
    # A very slow hash still lets one wait rather than refusing whenever the slots are busy.
    assert Hashing(_passwords(5.0), 1).queue_limit == 1


def test_a_set_queue_limit_wins_over_the_measurement() -> None:
    assert Hashing(_passwords(0.2), 4, queue_limit=3).queue_limit == 3
    assert Hashing(_passwords(0.2), 4, queue_limit=0).queue_limit == 0


def test_retry_after_is_at_least_a_second() -> None:
    assert Hashing(_passwords(0.001), 4).retry_after() == 1
