"""Background and timed work: timed jobs fire, survive restarts, and real `hub worker` processes run tasks."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from hub.db import utcnow
from hub.models import PasswordReset, ScheduledJob
from hub.tasks import schedule
from tests.conftest import RunningHub, child_environment, eventually, make_settings, register, start_hub
from tests.hub import recorders

ROOT = Path(__file__).resolve().parents[2]


async def test_a_timed_job_fires_once_at_its_time(hub: RunningHub) -> None:
    organization = await register(hub)
    note = f"timed-{secrets.token_hex(3)}"
    async with hub.runtime.db.session(organization.id) as session:
        await schedule(session, "tests.timed", utcnow() + timedelta(seconds=1), note=note)
        await session.commit()
    await eventually(lambda: note in recorders.RAN, within=15)

    # The job is marked sent just after it is handed over, so a quick worker may run it first.
    async def marked_sent() -> bool:
        async with hub.runtime.db.session(organization.id) as session:
            job = await session.scalar(
                select(ScheduledJob).where(ScheduledJob.kwargs["note"].as_string() == note)
            )
        assert job is not None
        return job.sent_at is not None

    await eventually(marked_sent, within=5)
    await asyncio.sleep(3)  # past another scheduler refresh: still once
    assert recorders.RAN.count(note) == 1


async def test_scheduling_the_same_key_moves_the_job(hub: RunningHub) -> None:
    organization = await register(hub)
    key = f"reminder:{secrets.token_hex(3)}"
    first, moved = f"first-{key}", f"moved-{key}"
    async with hub.runtime.db.session(organization.id) as session:
        await schedule(session, "tests.timed", utcnow() + timedelta(hours=1), key=key, note=first)
        await session.commit()
    async with hub.runtime.db.session(organization.id) as session:
        await schedule(session, "tests.timed", utcnow() + timedelta(seconds=1), key=key, note=moved)
        await session.commit()
        count = await session.scalar(
            select(func.count()).select_from(ScheduledJob).where(ScheduledJob.key == key)
        )
    assert count == 1
    await eventually(lambda: moved in recorders.RAN, within=15)
    assert first not in recorders.RAN


async def test_a_job_moved_while_it_is_handed_off_fires_at_its_new_time(hub: RunningHub) -> None:
    """The scheduler loaded the job for its first time; it is moved before the hand-off ends. The
    old hand-off neither claims nor marks the moved job: it fires at its new time, once."""
    from taskiq.exceptions import ScheduledTaskCancelledError

    from hub.tasks import DatabaseScheduleSource

    organization = await register(hub)
    key = f"snooze:{secrets.token_hex(3)}"
    note = f"moved-{key}"
    async with hub.runtime.db.session(organization.id) as session:
        await schedule(session, "tests.timed", utcnow() + timedelta(minutes=2), key=key, note=note)
        await session.commit()
    source = DatabaseScheduleSource(hub.runtime)
    loaded = [s for s in await source.get_schedules() if s.kwargs.get("note") == note]
    assert len(loaded) == 1
    async with hub.runtime.db.session(organization.id) as session:
        await schedule(session, "tests.timed", utcnow() + timedelta(seconds=1), key=key, note=note)
        await session.commit()
    with pytest.raises(ScheduledTaskCancelledError):
        await source.pre_send(loaded[0])  # its time is no longer the job's
    await source.post_send(loaded[0])  # nor may it mark the job sent
    await eventually(lambda: note in recorders.RAN, within=15)
    await asyncio.sleep(2.5)
    assert recorders.RAN.count(note) == 1


async def test_a_job_whose_hand_off_failed_is_handed_off_again(tmp_path: Path) -> None:
    """A scheduler that claimed a job and died before the broker took it (or whose broker was
    away) leaves a claim and no `sent_at`; once the claim lapses the job goes out after all."""
    from hub.tasks import DatabaseScheduleSource

    hub = await start_hub(make_settings(tmp_path, HUB_TIMED_JOB_CLAIM_SECONDS="2"), kind="sqlite")
    try:
        organization = await register(hub)
        note = f"lost-hand-off-{secrets.token_hex(3)}"
        async with hub.runtime.db.session(organization.id) as session:
            await schedule(session, "tests.timed", utcnow() + timedelta(minutes=1), note=note)
            await session.commit()
        dead_scheduler = DatabaseScheduleSource(hub.runtime)
        loaded = [s for s in await dead_scheduler.get_schedules() if s.kwargs.get("note") == note]
        await dead_scheduler.pre_send(loaded[0])  # claimed, then nothing: the hand-off never happened
        async with hub.runtime.db.session(organization.id) as session:
            await session.execute(
                update(ScheduledJob)
                .where(ScheduledJob.kwargs["note"].as_string() == note)
                .values(run_at=utcnow() - timedelta(seconds=1))
                .execution_options(synchronize_session=False)
            )  # the job is due now (the claim was for its time then; it lapses all the same)
            await session.commit()
        await eventually(lambda: note in recorders.RAN, within=20)
        await asyncio.sleep(2.5)
        assert recorders.RAN.count(note) == 1
    finally:
        await hub.stop()


async def test_timed_work_survives_a_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    first = await start_hub(settings, kind="sqlite")
    organization = await register(first)
    note = f"restart-{secrets.token_hex(3)}"
    async with first.runtime.db.session(organization.id) as session:
        await schedule(session, "tests.timed", utcnow() + timedelta(seconds=3), note=note)
        await session.commit()
    await first.stop()  # the hub goes down before the job is due
    assert note not in recorders.RAN
    second = await start_hub(settings, kind="sqlite")
    try:
        await eventually(lambda: note in recorders.RAN, within=15)
    finally:
        await second.stop()


async def test_hub_worker_processes_run_the_tasks_of_a_scaled_hub(
    tmp_path: Path, fresh_database: str, redis_url: str
) -> None:
    """Web here, tasks in a real `hub worker` process, over PostgreSQL and a Redis stream."""
    settings = make_settings(
        tmp_path, DATABASE_URL=fresh_database, REDIS_URL=redis_url, HUB_MIGRATE_ON_START="true"
    )
    web = await start_hub(settings, kind="postgres")  # no in-process worker: only the subprocess consumes
    # Another installation in this process, with a worker on its own queue, started last: its
    # runtime must not take over the web hub's tasks.
    neighbour = await start_hub(
        make_settings(tmp_path / "neighbour", DATABASE_URL=fresh_database, REDIS_URL=redis_url),
        kind="postgres",
        in_process_worker=True,
    )
    environment = child_environment(web.settings, HUB_DATA_DIR=str(tmp_path))
    worker = None
    try:
        organization = await register(web)
        async with web.client() as client:
            answered = await client.post(
                "/api/auth/forgot-password", json={"email": organization.admin.email}
            )
        assert answered.status_code == 202

        async def reset_link_made() -> bool:
            async with web.runtime.db.session(organization.id) as session:
                return bool(await session.scalar(select(func.count()).select_from(PasswordReset)))

        await asyncio.sleep(1.5)
        assert not await reset_link_made()  # queued in Redis, waiting for a worker of this hub
        worker = subprocess.Popen(  # noqa: ASYNC220 - a long-running child, waited for below
            [sys.executable, "-m", "hub.cli", "worker"],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # The worker picks the waiting task from the stream and runs the handler that makes the link.
        await eventually(reset_link_made, within=30)
    finally:
        output = ""
        if worker is not None:
            await asyncio.sleep(0.5)
            worker.terminate()
            output, _ = await asyncio.to_thread(worker.communicate, timeout=20)
        await neighbour.stop()
        await web.stop()
    assert "mail not sent: SMTP is not configured" in output


async def test_worker_and_scheduler_refuse_embedded_mode(tmp_path: Path) -> None:
    environment = {**os.environ, "HUB_DATA_DIR": str(tmp_path)}
    environment.pop("REDIS_URL", None)
    environment.pop("DATABASE_URL", None)
    for command in ("worker", "scheduler"):
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "hub.cli", command],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2
        assert f"hub {command} needs REDIS_URL" in result.stderr
