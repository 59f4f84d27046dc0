"""The lifecycle commands with real workers, Redis and the simulator (operation jobs that run
a while): a bulk run's tasks paused, resumed, modified and undone through `htap-sync`, each
done by the service's own predicate, each rerun a no-op; an operation on a ticket whose create
is still on its way waits for it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from htap_sync.common.models import OperationRequest, TicketState
from htap_sync.common.settings import Settings
from htap_sync.producer.api import Producer
from htap_sync.simulator import SimulatorConfig, SimulatorServer
from htap_sync.worker.api.client import TaurusClient
from tests.conftest import VALID, request_data
from tests.integration.conftest import WorkerFactory
from tests.integration.harness import TOKEN, wait_for
from tests.integration.test_cli import htap_sync

COUNT = 5
SELECTION: dict[str, Any] = {
    "table_repl_config": {"repl_type": "exclude_tables", "repl_scope": "all", "tables": []},
    "db_configs": [{"param_name": "binlog_expire_logs_seconds", "value": "0"}],
}


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """Operation jobs run 0.5 s (the task busy meanwhile), so a pause shows a while later."""
    return SimulatorConfig(token=TOKEN, seed=11, op_job_s=0.5)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Operations look again every 0.3 s; following is quick too."""
    return {"follow_first_s": 0.2, "follow_interval_s": 0.3, "max_attempts": 10}


@pytest.fixture
def api(simulator: SimulatorServer) -> Iterator[TaurusClient]:
    """A client of the simulator, to read the list as the service shows it."""
    http = httpx.Client(base_url=simulator.url, headers={"X-Auth-Token": TOKEN})
    yield TaurusClient(http)
    http.close()


def stages(api: TaurusClient) -> dict[str, str]:
    """Task name -> stage (lower case) of every task the list shows on the instance."""
    rows = api.list_replications(VALID["project_id"], VALID["instance_id"])
    return {r.task_name: r.stage_key for r in rows}


def lines(result: Any) -> list[dict[str, Any]]:
    """The JSON lines a command printed (its stderr in the message when it failed)."""
    assert result.stdout.strip(), result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def calls(simulator: SimulatorServer, route: str) -> int:
    return int(simulator.state.snapshot()["task_calls"].get(route, 0))


def _migration(
    tmp_path: Path, settings: Settings, producer: Producer
) -> tuple[list[dict[str, Any]], Path, list[str]]:
    """A bulk run of COUNT configured tasks, plus a row in conflict with another's task
    (created first, another database pair): its rows, results file and accepted tickets."""
    producer.enqueue(request_data(task_name="ops_theirs", source_database="theirs"))
    rows = [{**request_data(task_name=f"ops_{i}"), **SELECTION} for i in range(COUNT)]
    source = tmp_path / "tasks.jsonl"
    mine = {**request_data(task_name="ops_theirs"), **SELECTION}
    source.write_text("".join(json.dumps(r) + "\n" for r in [*rows, mine]))
    results = tmp_path / "results.jsonl"
    bulk = htap_sync(settings, "bulk", str(source), "-o", str(results), "--wait", "--no-progress")
    assert bulk.returncode == 1, bulk.stderr  # the conflicting row
    written = [json.loads(line) for line in results.read_text().splitlines()]
    assert written[-1]["state"] == "conflict"
    return rows, results, [line["ticket"] for line in written[:-1]]


def _modify_once(
    tmp_path: Path,
    settings: Settings,
    simulator: SimulatorServer,
    api: TaurusClient,
    row: dict[str, Any],
) -> None:
    """modify --wait: its job Completed, the configuration changed; again: a duplicate."""
    tables = {"repl_type": "include_tables", "repl_scope": "part", "tables": ["tenant"]}
    change = tmp_path / "change.json"
    change.write_text(json.dumps({**row, "table_repl_config": tables}))
    modified = htap_sync(settings, "modify", str(change), "--wait")
    assert modified.returncode == 0, modified.stdout + modified.stderr
    [line] = lines(modified)
    assert line["state"] == "succeeded" and line["job_id"]
    job = api.get_job(VALID["project_id"], line["job_id"])
    assert job is not None and job.status == "Completed"
    config = api.get_configuration(VALID["project_id"], VALID["instance_id"], row["task_name"])
    assert config is not None and config["table_repl_config"] == tables
    same = htap_sync(settings, "modify", str(change), "--wait")
    assert [line["outcome"] for line in lines(same)] == ["duplicate"]
    assert calls(simulator, "modify") == 1


@pytest.mark.timeout(240)
def test_pause_resume_modify_undo_each_rerun_a_no_op(
    tmp_path: Path,
    settings: Settings,
    producer: Producer,
    simulator: SimulatorServer,
    api: TaurusClient,
    start_worker: WorkerFactory,
) -> None:
    """pause --instance --all --wait: every task Paused; again: nothing sent. resume TICKETs:
    Incremental; again: nothing sent. modify: its job Completed, the configuration changed;
    again: a duplicate, no PUT. delete TICKET --wait: gone. undo --wait: none listed, each
    reported removed (the one deleted before: not there); undo again: each not there, no
    DELETE sent. A row of the file in conflict with another's task leaves
    that task alone."""
    start_worker(concurrency=4)
    rows, results, tickets = _migration(tmp_path, settings, producer)

    paused = htap_sync(settings, "pause", "--instance", VALID["instance_id"], "--all", "--wait")
    assert paused.returncode == 0, paused.stdout + paused.stderr
    # Every task this deployment created on the instance: the file's and the other one.
    assert [line["state"] for line in lines(paused)] == ["succeeded"] * (COUNT + 1)
    assert set(stages(api).values()) == {"paused"} and len(stages(api)) == COUNT + 1
    sent = calls(simulator, "pause")
    assert sent == COUNT + 1
    again = htap_sync(settings, "pause", "--results", str(results), "--wait")
    assert again.returncode == 0, again.stderr
    assert len(lines(again)) == COUNT and all(line["already"] for line in lines(again))
    assert calls(simulator, "pause") == sent

    resumed = htap_sync(settings, "resume", *tickets, "--wait")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    resumed_stages = {t: s for t, s in stages(api).items() if t != "ops_theirs"}
    assert set(resumed_stages.values()) <= {"incremental", "full"}
    assert len(resumed_stages) == COUNT and stages(api)["ops_theirs"] == "paused"
    assert calls(simulator, "resume") == COUNT
    rerun = htap_sync(settings, "resume", *tickets, "--wait")
    assert all(line["already"] for line in lines(rerun)), rerun.stdout
    assert calls(simulator, "resume") == COUNT

    _modify_once(tmp_path, settings, simulator, api, rows[0])

    deleted = htap_sync(settings, "delete", tickets[0], "--wait")
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert [(line["state"], line["already"]) for line in lines(deleted)] == [("succeeded", False)]
    undone = htap_sync(settings, "undo", str(results), "--wait")
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert [line["result"] for line in lines(undone)] == ["not_there"] + ["removed"] * (COUNT - 1)
    assert f"{COUNT - 1} removed" in undone.stderr and "1 not_there" in undone.stderr
    assert list(stages(api)) == ["ops_theirs"]  # another's task, untouched
    deletes = calls(simulator, "delete")
    rerun = htap_sync(settings, "undo", str(results), "--wait")
    assert rerun.returncode == 0, rerun.stderr
    assert [line["result"] for line in lines(rerun)] == ["not_there"] * COUNT
    assert calls(simulator, "delete") == deletes == COUNT


@pytest.mark.timeout(120)
def test_a_delete_queued_before_its_create_ran_waits_for_it(
    producer: Producer, api: TaurusClient, start_worker: WorkerFactory
) -> None:
    """A delete submitted (Python API) while its create is still queued waits for the create,
    then deletes the task it made: both tickets succeed, the list shows nothing."""
    receipt = producer.enqueue(request_data(task_name="early_delete"))
    [deleting] = producer.operations.delete([receipt.ticket])
    assert deleting.outcome == "queued" and isinstance(deleting.operation, OperationRequest)
    worker = start_worker(concurrency=2)
    statuses = wait_for(producer, [receipt.ticket, deleting.ticket or ""], workers=[worker])
    assert {s.state for s in statuses.values()} == {TicketState.SUCCEEDED}
    assert not statuses[deleting.ticket or ""].reconciled  # it sent the DELETE
    assert "early_delete" not in stages(api)


class TestRecreate:
    """`retry --recreate`: a task that failed to sync is deleted and created again, on the
    user's word only."""

    @pytest.fixture
    def sim_config(self) -> SimulatorConfig:
        """Every created task fails to sync (until the test says otherwise)."""
        return SimulatorConfig(token=TOKEN, seed=5, sync_fail_rate=1.0)

    @pytest.mark.timeout(180)
    def test_a_failed_task_is_deleted_and_created_again(
        self,
        settings: Settings,
        producer: Producer,
        simulator: SimulatorServer,
        start_worker: WorkerFactory,
    ) -> None:
        """The ticket's task fails to sync; nothing re-creates it by itself. retry --recreate
        deletes it (an operation ticket), re-drives the create, and the new task syncs; a
        ticket whose task did not fail is refused (exit 2, naming the ticket field)."""
        request = request_data(task_name="fails_once")
        ticket = producer.enqueue(request).ticket
        worker = start_worker(concurrency=2)
        first = producer.wait([ticket], timeout_s=60, until="synced")[ticket]
        assert first.sync is not None and first.sync.state.value == "failed", first
        assert (
            simulator.state.creates_for(VALID["project_id"], VALID["instance_id"], "fails_once")
            == 1
        )
        simulator.state.lifecycle.fail_rate = 0.0  # the cause was fixed

        again = htap_sync(settings, "retry", "--recreate", ticket, "--timeout-s", "60")
        assert again.returncode == 0, again.stdout + again.stderr
        [line] = lines(again)
        assert line["outcome"] == "redriven" and line["delete"]["state"] == "succeeded"
        second = wait_for(producer, [ticket], workers=[worker])[ticket]
        assert second.state is TicketState.SUCCEEDED
        synced = producer.wait([ticket], timeout_s=60, until="synced")[ticket]
        assert synced.synced, synced
        assert (
            simulator.state.creates_for(VALID["project_id"], VALID["instance_id"], "fails_once")
            == 2
        )

        refused = htap_sync(settings, "retry", "--recreate", ticket)
        assert refused.returncode == 2
        assert lines(refused)[0]["errors"][0]["field"] == "ticket"


@pytest.mark.timeout(120)
def test_a_failed_operation_is_listed_and_retried_like_a_create(
    settings: Settings, producer: Producer, start_worker: WorkerFactory
) -> None:
    """A pause of a task never created fails (HTAP_SYNC.NO_TASK); `failed` lists it and
    `retry` re-drives it (its operation submitted again)."""
    from htap_sync.common.models import parse_request
    from htap_sync.producer.operations import of_request

    request = parse_request(request_data(task_name="never_made"))
    receipt = producer.operations.submit(of_request("pause", request))
    worker = start_worker(concurrency=2)
    ticket = str(receipt.ticket)
    failed = wait_for(producer, [ticket], workers=[worker])[ticket]
    assert failed.error is not None and failed.error.error_code == "HTAP_SYNC.NO_TASK"
    listed = htap_sync(settings, "failed", "--json")
    assert ticket in listed.stdout, listed.stderr
    again = htap_sync(settings, "retry", ticket, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["outcome"] == "redriven"


def test_modify_refuses_bad_requests_naming_the_field(tmp_path: Path, settings: Settings) -> None:
    """modify of a file (a JSON array here): a request without a selection, and one that is no
    object, are invalid lines naming their field; nothing is queued; exit 2."""
    change = tmp_path / "change.json"
    change.write_text(json.dumps([request_data(task_name="plain"), "not an object"]))
    refused = htap_sync(settings, "modify", str(change))
    assert refused.returncode == 2, refused.stderr
    found = lines(refused)
    assert [line["outcome"] for line in found] == ["invalid", "invalid"]
    assert [line["errors"][0]["field"] for line in found] == ["change", "request"]
    assert [line["target"] for line in found] == ["change.json[0]", "change.json[1]"]
