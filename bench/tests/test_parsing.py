"""The bench's own arithmetic: what it reads from wrk and Prometheus, and how it judges."""

from __future__ import annotations

import json

import pytest

from bench.data_size import data_size_ratios
from bench.fixed_rate import cpu_per_request, parse_report, sustainable_rate
from bench.goals import goals, kept_up, ratios
from bench.pipeline import (
    PUBLISH_LAG,
    counter_by_label,
    cpu_per_event,
    histogram_buckets,
    histogram_percentile,
    mongo_commands,
    percentile,
)
from bench.wrk import MARKER, combine, cpu_while_saturated, lua_script, parse_output

WRK_OUTPUT = (
    "Running 10s test @ http://127.0.0.1:1/x\n  1 threads and 32 connections\n"
    + MARKER
    + '{"requests":5000,"duration_us":10000000,"connect":0,"read":2,"write":0,"status":3,'
    '"timeout":1,"p50_us":4200,"p90_us":9000,"p99_us":15500,"max_us":40000,"mean_us":5000.0}\n'
)


def test_wrk_summary_gives_rate_latencies_in_ms_and_both_kinds_of_error() -> None:
    result = parse_output(WRK_OUTPUT)
    assert result.rps == 500.0
    assert (result.p50_ms, result.p99_ms) == (4.2, 15.5)
    assert (result.status_errors, result.socket_errors, result.errors) == (3, 3, 6)


def test_wrk_output_without_the_summary_line_is_an_error() -> None:
    with pytest.raises(ValueError, match="no summary"):
        parse_output("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_rounds_combine_into_throughput_over_their_whole_time() -> None:
    fast, slow = parse_output(WRK_OUTPUT), parse_output(WRK_OUTPUT)
    slow.requests, slow.seconds = 1000, 10.0
    row = combine([fast, slow])
    assert row["rps"] == 300.0
    assert row["errors"] == 12


def test_lua_script_sends_the_token_and_a_json_body() -> None:
    script = lua_script("abc", method="POST", body={"title": 'say "hi"'})
    assert 'wrk.headers["Authorization"] = "Bearer abc"' in script
    assert 'wrk.method = "POST"' in script
    assert r'wrk.body = "{\"title\": \"say \\\"hi\\\"\"}"' in script


def test_lua_script_without_a_token_sends_no_authorization() -> None:
    script = lua_script(None, method="POST", body={"email": "a@example.com"})
    assert "Authorization" not in script
    assert 'wrk.headers["Content-Type"] = "application/json"' in script


def test_lua_script_with_several_tokens_takes_them_in_turn() -> None:
    script = lua_script(["a", "b", "c"], method="POST", body={})
    assert 'local tokens = {"Bearer a", "Bearer b", "Bearer c"}' in script
    assert 'wrk.headers["Authorization"] = tokens[(sent % #tokens) + 1]' in script
    assert "return wrk.format()" in script


def _metrics(counts: dict[str, int]) -> str:
    return "\n".join(
        f'events_consume_lag_seconds_bucket{{le="{le}",queue="q",service="analytics"}} {n}.0'
        for le, n in counts.items()
    )


def test_lag_percentile_counts_only_observations_between_the_two_scrapes() -> None:
    before = histogram_buckets(_metrics({"0.5": 100, "1.0": 100, "2.5": 100, "+Inf": 100}))
    after = histogram_buckets(_metrics({"0.5": 100, "1.0": 150, "2.5": 200, "+Inf": 200}))
    # 100 new observations: half in (0.5, 1], half in (1, 2.5].
    assert histogram_percentile(before, after, 50) == 1.0
    assert histogram_percentile(before, after, 99) == pytest.approx(2.47)


def test_publish_lag_is_read_from_its_own_histogram_beside_the_consume_lag() -> None:
    # One scrape of tasks holds both: the relay's publish lag and its consumer's lag.
    text = "\n".join(
        [
            _metrics({"0.5": 7, "+Inf": 7}),
            'events_publish_lag_seconds_bucket{le="0.05",service="tasks"} 90.0',
            'events_publish_lag_seconds_bucket{le="0.1",service="tasks"} 100.0',
            'events_publish_lag_seconds_bucket{le="+Inf",service="tasks"} 100.0',
        ]
    )
    published = histogram_buckets(text, PUBLISH_LAG)
    assert published == {0.05: 90.0, 0.1: 100.0, float("inf"): 100.0}
    assert histogram_percentile({}, published, 50) == pytest.approx(0.028, abs=0.001)
    assert histogram_buckets(text) == {0.5: 7.0, float("inf"): 7.0}


def test_lag_percentile_is_none_when_nothing_was_consumed() -> None:
    same = histogram_buckets(_metrics({"0.5": 3, "+Inf": 3}))
    assert histogram_percentile(same, same, 99) is None


def test_nearest_rank_percentile() -> None:
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0
    assert percentile([], 50) is None


def _row(target: str, rps: float, p99: float, p50: float = 30.0) -> dict[str, object]:
    return {"tracing": "off", "endpoint": "get_one", "target": target, "rps": rps,
            "p50_ms": p50, "p99_ms": p99, "errors": 0}  # fmt: skip


def _fixed(target: str, p50: float, p99: float, errors: int = 0) -> dict[str, object]:
    return {"tracing": "off", "endpoint": "get_one", "target": target, "offered_rps": 200,
            "p50_ms": p50, "p99_ms": p99, "errors": errors}  # fmt: skip


def test_gateway_at_half_of_direct_throughput_misses_the_goal_and_nginx_is_reported() -> None:
    http = [_row("direct", 1000, 10), _row("nginx", 900, 12), _row("gateway", 500, 40)]
    fixed = [_fixed("direct", 3, 7), _fixed("nginx", 3.5, 8), _fixed("gateway", 6, 30, errors=2)]
    (row,) = ratios(http, fixed)
    assert row["nginx_over_direct"] == 0.9
    assert row["gateway_added_p99_ms"] == 30
    assert (row["fixed_rps"], row["gateway_added_p50_fixed_ms"]) == (200, 3)
    assert (row["gateway_added_p99_fixed_ms"], row["nginx_added_p99_fixed_ms"]) == (23, 1)
    results = {"ratios": [row], "http": http, "http_fixed_rate": fixed}
    verdicts = {goal: met for goal, met, _ in goals(results)}
    assert verdicts["gateway >= 0.7x direct (get_one, tracing off)"] is False
    assert (
        verdicts["no errors through the gateway (at a fixed rate, get_one, tracing off)"] is False
    )


def test_gateway_at_seven_tenths_of_direct_meets_the_goal() -> None:
    http = [_row("direct", 1000, 10), _row("gateway", 700, 60)]
    verdicts = {goal: met for goal, met, _ in goals({"ratios": ratios(http), "http": http})}
    assert verdicts == {"gateway >= 0.7x direct (get_one, tracing off)": True}


def test_a_fixed_rate_the_machine_could_not_hold_is_flagged() -> None:
    # Every path queued (direct's p99 past its median at saturation): the gateway's p99 was
    # no worse than direct's, and nothing is to be concluded from it.
    http = [_row("direct", 500, 100, p50=60), _row("gateway", 330, 190, p50=90)]
    (row,) = ratios(http, [_fixed("direct", 150, 1820), _fixed("gateway", 150, 1730)])
    assert row["fixed_overloaded"] is True
    # Direct's p99 within its median at saturation: a rate the machine held.
    (row,) = ratios(http, [_fixed("direct", 4, 59), _fixed("gateway", 6, 70)])
    assert row["fixed_overloaded"] is False


VEGETA_REPORT = {
    "latencies": {"total": 9_000_000_000, "mean": 4_500_000, "50th": 3_250_000,
                  "90th": 5_000_000, "95th": 6_000_000, "99th": 12_345_678, "max": 40_000_000,
                  "min": 1_000_000},
    "requests": 1800, "rate": 150.2, "throughput": 149.9, "success": 0.998,
    "status_codes": {"200": 1796, "0": 3, "503": 1},
}  # fmt: skip


def test_vegeta_report_gives_milliseconds_and_counts_every_non_2xx_as_an_error() -> None:
    result = parse_report(json.dumps(VEGETA_REPORT), offered_rps=200)
    assert (result.requests, result.offered_rps, result.errors) == (1800, 200, 4)
    assert (result.p50_ms, result.p99_ms, result.max_ms) == (3.25, 12.35, 40.0)


def test_the_fixed_rate_is_a_share_of_the_slowest_path_in_tens() -> None:
    assert sustainable_rate([666.0, 661.0, 415.0, 469.0, 459.0, 308.0], 0.5) == 150
    assert sustainable_rate([15.0, 12.0], 0.5) == 10


def test_paths_run_at_once_share_their_upstream() -> None:
    # Three paths at 100/s each ask 300/s of tasks: half of 666 is 333, so 100 fits, not 150.
    rps = [666.0, 661.0, 415.0]
    assert sustainable_rate(rps, 0.5, upstream_rps=[666.0], paths=3) == 110
    assert sustainable_rate(rps, 0.5, upstream_rps=[666.0, 469.0], paths=3) == 70
    # A slow path still bounds it.
    assert sustainable_rate([900.0, 120.0], 0.5, upstream_rps=[900.0], paths=2) == 60


def test_mongo_commands_are_keyed_by_command_and_collection() -> None:
    text = "\n".join(
        [
            "# TYPE mongo_commands_total counter",
            'mongo_commands_total{collection="tasks",command="find"} 3.0',
            'mongo_commands_total{collection="",command="ping"} 1.0',
            'mongo_commands_created{collection="tasks",command="find"} 1.7e+09',
        ]
    )
    assert mongo_commands(text) == {"find tasks": 3.0, "ping": 1.0}


def test_counter_by_label_sums_each_value_of_one_label() -> None:
    text = "\n".join(
        [
            'outbox_relay_seconds_total{service="tasks",step="read"} 1.5',
            'outbox_relay_seconds_total{service="auth",step="read"} 0.5',
            'outbox_relay_seconds_total{service="tasks",step="publish"} 2.0',
            'outbox_relay_seconds_created{service="tasks",step="read"} 1.7e+09',
        ]
    )
    assert counter_by_label(text, "outbox_relay_seconds_total", "step") == {
        "read": 2.0,
        "publish": 2.0,
    }


def test_paced_writes_kept_up_only_when_delivered_at_pace_without_queueing() -> None:
    assert kept_up({"offered_rps": 76, "rps": 74.0, "p99_ms": 428.1})
    assert not kept_up({"offered_rps": 80, "rps": 69.3, "p99_ms": 3179.1})
    assert not kept_up({"offered_rps": 97, "rps": 96.0, "p99_ms": 4590.0}), "queued"
    assert not kept_up({"offered_rps": 80, "rps": None, "p99_ms": None})


def test_lag_behind_paced_writes_that_fell_behind_does_not_meet_the_goal() -> None:
    paced = {"offered_writes_per_s": 79, "analytics_lag_p99_s": 1.0}
    behind = {"offered_rps": 79, "rps": 65.9, "p99_ms": 3988.9}
    steady = {"offered_rps": 79, "rps": 78.5, "p99_ms": 300.0}
    for writes, met in ((behind, False), (steady, True)):
        results = {"ratios": [], "http": [], "pipeline_paced": paced, "paced_writes": writes}
        verdicts = {goal: ok for goal, ok, _ in goals(results)}
        assert verdicts["write -> statistics p99 lag < 2 s (paced at 79/s)"] is met


def test_cpu_per_request_divides_the_gateway_by_its_path_and_tasks_by_all_three() -> None:
    rows = [
        {"tracing": t, "endpoint": "get_one", "target": target, "requests": 600}
        for t in ("off", "on")
        for target in ("direct", "nginx", "gateway")
    ]
    used = {("off", "gateway"): 1.2, ("off", "tasks"): 3.6, ("on", "gateway"): 1.8}
    assert cpu_per_request(rows, used, 40) == [
        {"tracing": "off", "endpoint": "get_one", "rate": 40,
         "gateway_cpu_ms": 2.0, "tasks_cpu_ms": 2.0},
        {"tracing": "on", "endpoint": "get_one", "rate": 40,
         "gateway_cpu_ms": 3.0, "tasks_cpu_ms": None},
    ]  # fmt: skip


def test_cpu_per_event_sums_the_processes_and_gives_the_ceiling_of_the_cores() -> None:
    before = {"tasks": 10.0, "analytics": 5.0, "rabbitmq": 1.0, "jaeger": None}
    after = {"tasks": 12.0, "analytics": 6.0, "rabbitmq": 2.0, "jaeger": 3.0}
    # 4 s of CPU over 400 events: 10 ms an event, so 2 cores keep up with 200 events/s.
    assert cpu_per_event(before, after, 400, cores=2) == {
        "tasks": 5.0, "analytics": 2.5, "rabbitmq": 2.5, "jaeger": None,
        "all": 10.0, "ceiling_events_per_s": 200,
    }  # fmt: skip
    assert cpu_per_event(before, after, 0, cores=2)["ceiling_events_per_s"] is None


def _pipeline_goal(pipe: dict[str, object], broker: float | None) -> tuple[bool, str]:
    results = {"ratios": [], "http": [], "pipeline": pipe}
    if broker is not None:
        results["broker"] = {"publish_confirm_256_in_flight_per_s": broker}
    ((met, numbers),) = [(ok, text) for goal, ok, text in goals(results)
                         if goal.startswith("pipeline >= 1000")]  # fmt: skip
    return met, numbers


def test_the_events_goal_is_met_by_a_share_of_the_broker_and_names_the_cores_ceiling() -> None:
    cpu = {"tasks": 6.0, "analytics": 4.0, "all": 10.0, "ceiling_events_per_s": 200}
    pipe = {"end_to_end_events_per_s": 980.0, "cpu_ms_per_event": cpu}
    assert _pipeline_goal(pipe, 2400.0) == (
        True,
        "980/s = 0.41x RabbitMQ's 2400/s pipelined "
        "(CPU 10.0 ms an event: the cores keep up with 200/s at most)",
    )
    assert _pipeline_goal(pipe, 2500.0)[0] is False
    assert _pipeline_goal({**pipe, "end_to_end_events_per_s": 1000.0}, 5000.0)[0] is True
    assert _pipeline_goal(pipe, None)[1].startswith(
        "980/s (CPU 10.0 ms an event: the cores keep up with 200/s at most)"
    )


def test_a_missed_events_goal_says_what_cpu_per_event_it_needs_and_the_servers_share() -> None:
    # 10 ms an event keeps the cores at 200/s, so 1000/s needs 2 ms an event; 0.4x of a
    # broker at 2000/s is 800/s, which needs 2.5 ms, and the lesser rate is the goal.
    cpu = {"tasks": 6.0, "engine": 2.5, "rabbitmq": 1.0, "redis": 0.5, "all": 10.0,
           "ceiling_events_per_s": 200}  # fmt: skip
    pipe = {"end_to_end_events_per_s": 190.0, "cpu_ms_per_event": cpu}
    met, numbers = _pipeline_goal(pipe, None)
    assert not met
    assert numbers.endswith(
        "; 1000/s needs <= 2.00 ms an event: the servers took 4.00, the services 6.00"
    )
    assert _pipeline_goal(pipe, 2000.0)[1].endswith(
        "; 800/s needs <= 2.50 ms an event: the servers took 4.00, the services 6.00"
    )


def test_cpu_per_event_must_halve_and_no_acknowledged_write_be_lost() -> None:
    burst = {"end_to_end_events_per_s": 500.0, "cpu_ms_per_event": {"all": 3.4},
             "tasks_written": 100, "counted_in_summaries": 100, "all_applied": True}  # fmt: skip
    paced = {"offered_writes_per_s": 50, "analytics_lag_p99_s": 0.3,
             "cpu_ms_per_event": {"all": 14.0}, "tasks_written": 90,
             "counted_in_summaries": 89, "all_applied": False}  # fmt: skip
    results = {"pipeline": burst, "pipeline_paced": paced,
               "paced_writes": {"offered_rps": 50, "rps": 50.0, "p99_ms": 80.0}}  # fmt: skip
    verdicts = {goal: (met, text) for goal, met, text in goals(results)}
    assert verdicts["CPU per event <= 3.45 ms, half of 6.9 (writes at full speed)"] == (
        True,
        "3.40 ms",
    )
    assert verdicts["CPU per event <= 13.75 ms, half of 27.5 (paced)"][0] is False
    assert verdicts["no acknowledged write lost (full speed)"][0] is True
    assert verdicts["no acknowledged write lost (paced)"] == (
        False,
        "90 written, 89 in the users' statistics",
    )


def test_posts_are_judged_against_the_gateways_single_get_with_tracing_off() -> None:
    http = [
        {"tracing": "off", "endpoint": "get_one", "target": "gateway", "rps": 1000.0, "errors": 0},
        {"tracing": "on", "endpoint": "get_one", "target": "gateway", "rps": 800.0, "errors": 0},
    ]
    verdicts = {
        goal: (met, text)
        for goal, met, text in goals({"http": http, "writes": {"rps": 550.0, "errors": 0}})
    }
    assert verdicts["POST >= 0.6x the gateway's single GET (tracing off)"] == (
        False,
        "0.55x (550 against 1000 req/s; 0.69x tracing on's 800)",
    )
    # With the pipeline's CPU: 600/s at 4 ms a write (ceiling 500/s) needs 3.33 ms.
    cpu = {"tasks": 2.0, "engine": 1.0, "rabbitmq": 0.5, "all": 4.0, "ceiling_events_per_s": 500}
    results = {"http": http, "writes": {"rps": 550.0, "errors": 0},
               "pipeline": {"cpu_ms_per_event": cpu}}  # fmt: skip
    ((met, numbers),) = [(ok, text) for goal, ok, text in goals(results) if goal.startswith("POST")]
    assert not met
    assert numbers.endswith(
        "; 600/s needs <= 3.33 ms a write and its event: the servers took 1.50, the services 2.50"
    )


def _size_row(size: int, endpoint: str, rps: float, p50: float) -> dict[str, object]:
    return {"size": size, "endpoint": endpoint, "rps": rps, "p50_ms": p50, "errors": 0}


def test_data_size_compares_the_largest_size_with_the_smallest() -> None:
    rows = [
        _size_row(1000, "get_one", 1000, 30), _size_row(1000, "list_20", 800, 40),
        _size_row(1000, "login", 20, 190),
        _size_row(100000, "get_one", 900, 33), _size_row(100000, "list_20", 600, 50),
        _size_row(100000, "login", 18, 240),
    ]  # fmt: skip
    found = data_size_ratios(rows)
    assert found == {
        "list_20_p50_largest_over_smallest": 1.25,
        "login_p50_largest_over_smallest": 1.26,
        "get_one_p50_largest_over_smallest": 1.1,
        "list_over_get_one_rps": {"1000": 0.8, "100000": 0.67},
        "smallest": 1000,
        "largest": 100000,
    }
    verdicts = {
        goal: (met, text)
        for goal, met, text in goals({"data_size": {"rows": rows, "ratios": found}})
    }
    assert verdicts == {
        "list_20 p50 at 100,000 / 1,000 tasks <= 1.5x": (True, "1.25x"),
        "login p50 at 100,000 / 1,000 tasks <= 1.2x": (False, "1.26x"),
        "list_20 >= 0.7x get_one req/s at 100,000 tasks": (False, "0.67x (0.80x at 1,000)"),
    }


def test_cpu_while_saturated_gives_each_process_per_request_and_the_cores_kept_busy() -> None:
    rows = [
        {"tracing": "off", "endpoint": "get_one", "target": "direct", "requests": 1000,
         "seconds": 2.0, "rps": 500.0},
        {"tracing": "off", "endpoint": "get_one", "target": "gateway", "requests": 500,
         "seconds": 2.0, "rps": 250.0},
        {"tracing": "on", "endpoint": "get_one", "target": "gateway", "requests": 0,
         "seconds": 2.0, "rps": 0.0},
    ]  # fmt: skip
    used = {
        ("off", "get_one", "direct"): {"tasks": 1.5, "wrk": 0.3},
        ("off", "get_one", "gateway"): {"gateway": 1.8, "tasks": 1.0, "redis": 0.1, "wrk": 0.1},
        ("on", "get_one", "gateway"): {"gateway": 1.0},
    }
    direct, gateway = cpu_while_saturated(rows, used)  # no requests: no row
    assert direct["cpu_ms"] == {"tasks": 1.5, "wrk": 0.3}
    assert (direct["all_ms"], direct["cores_busy"]) == (1.8, 0.9)
    assert gateway["cpu_ms"] == {"gateway": 3.6, "tasks": 2.0, "redis": 0.2, "wrk": 0.2}
    assert (gateway["all_ms"], gateway["cores_busy"]) == (6.0, 1.5)


def test_each_set_of_services_is_judged_on_its_memory_at_the_end() -> None:
    memory = {"auth": {"idle_mb": 110.0, "end_mb": 120.0, "tracing_off_end_mb": 235.0}}
    verdicts = {goal: (met, text) for goal, met, text in goals({"memory": memory})}
    assert verdicts == {
        "auth < 150 MB RSS (at the end)": (True, "120 MB"),
        "auth < 150 MB RSS (tracing off, end)": (False, "235 MB"),
    }
