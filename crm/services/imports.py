"""Importing customers from a CSV file, a thousand rows a transaction, with each bad row named
by its line."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy import text as sql

from channels.phones import read_phone
from crm.events import ImportProgress
from crm.models import AttributeDefinition, Company, Customer, CustomerImport, CustomerPhone
from crm.schemas import ImportRequest
from crm.services.customers import EMAIL, typed_value
from hub import storage
from hub.audience import people
from hub.auth import CurrentUser
from hub.db import HubAsyncSession, new_id, table_of, utcnow
from hub.errors import InvalidInput, NotFound
from hub.i18n import N_
from hub.models import Media, Organization
from hub.realtime import push
from hub.tasks import kick

IMPORT_BATCH = 1000
MAX_IMPORT_ERRORS = 1000
TRUE, FALSE = {"yes", "true", "1", "y", "نعم"}, {"no", "false", "0", "n", "", "لا"}


async def start_import(session: HubAsyncSession, actor: CurrentUser, data: ImportRequest) -> CustomerImport:
    media = await session.get(Media, data.media_id)
    if media is None or media.content_type not in ("text/csv", "text/plain"):
        raise InvalidInput(N_("Upload a CSV file first."), field="media_id")
    fields = list(data.mapping.values())
    if "phone" not in fields and "email" not in fields:
        raise InvalidInput(N_("Map a column to the phone number or the e-mail address."), field="mapping")
    if len(set(fields)) != len(fields):
        raise InvalidInput(N_("Each field may come from one column only."), field="mapping")
    keys = {field.split(".", 1)[1] for field in fields if field.startswith("attributes.")}
    known = set(await session.scalars(select(AttributeDefinition.key)))
    for key in sorted(keys - known):
        raise InvalidInput(N_("There is no attribute named {key}."), field="mapping", key=key)
    job = CustomerImport(
        media_id=media.id,
        mapping=dict(data.mapping),
        on_duplicate=data.on_duplicate,
        started_by=actor.id,
        errors=[],
    )
    session.add(job)
    await session.flush()
    organization_id, job_id = session.organization_id, job.id

    async def run() -> None:
        await kick("crm.run_import", organization_id=str(organization_id), import_id=str(job_id))

    session.after_commit(run)
    await session.commit()
    return job


async def get_import(session: HubAsyncSession, import_id: uuid.UUID) -> CustomerImport:
    job = await session.get(CustomerImport, import_id)
    if job is None:
        raise NotFound()
    return job


TYPE_MISMATCH = N_("This value does not fit the attribute's type ({kind}).")


def _import_row(
    values: dict[str, str], region: str | None, definitions: dict[str, AttributeDefinition]
) -> tuple[dict[str, Any] | None, tuple[str, str, dict[str, str]] | None]:
    """The customer fields of one row, or the field at fault and why."""
    out: dict[str, Any] = {"attributes": {}}
    for field, raw in values.items():
        text = raw.strip()
        if field == "name":
            out["name"] = text[:200]
        elif field == "phone" and text:
            phone = read_phone(text, region)
            if phone is None:
                return None, ("phone", N_("This is not a valid phone number."), {})
            out["phone"] = phone
        elif field == "email" and text:
            if not EMAIL.match(text) or len(text) > 254:
                return None, ("email", N_("This is not a valid e-mail address."), {})
            out["email"] = text.lower()
        elif field == "language" and text:
            if text.lower() not in ("ar", "en"):
                return None, ("language", N_("Use ar or en."), {})
            out["language"] = text.lower()
        elif field == "tags":
            out["tags"] = sorted({tag.strip()[:50] for tag in text.split(";") if tag.strip()})
        elif field == "opted_out":
            if text.lower() not in TRUE | FALSE:
                return None, ("opted_out", N_("Use yes or no."), {})
            out["opted_out"] = text.lower() in TRUE
        elif field == "company" and text:
            out["company"] = text[:200]
        elif field.startswith("attributes.") and text:
            definition = definitions[field.split(".", 1)[1]]
            value: Any = text
            if definition.kind == "number":
                try:
                    value = float(text) if "." in text else int(text)
                except ValueError:
                    return None, (field, TYPE_MISMATCH, {"kind": definition.kind})
            try:
                out["attributes"][definition.key] = typed_value(definition, value, field)
            except InvalidInput:
                return None, (field, TYPE_MISMATCH, {"kind": definition.kind})
    if not out.get("phone") and not out.get("email"):
        return None, ("phone", N_("Give an e-mail address or a phone number."), {})
    out.setdefault("name", out.get("phone") or out.get("email"))
    return out, None


async def run_import(runtime: Any, organization_id: uuid.UUID, import_id: uuid.UUID) -> None:
    """Read the file a batch of rows at a time, each batch in its own transaction, so memory stays
    flat; push `importProgress` to whoever started it after each batch."""
    async with runtime.db.session(organization_id) as session:
        job = await get_import(session, import_id)
        if job.status != "queued":
            return  # already run (the task came twice)
        job.status = "running"
        media = await session.get_one(Media, job.media_id)
        region = await session.scalar(select(Organization.default_region))
        definitions = {d.key: d for d in await session.scalars(select(AttributeDefinition))}
        mapping, on_duplicate, starter, key = dict(job.mapping), job.on_duplicate, job.started_by, media.key
        await session.commit()
    counts = {"rows": 0, "created": 0, "updated": 0, "skipped": 0, "failed": 0}
    errors: list[dict[str, Any]] = []
    try:
        with storage.media_store(runtime.settings).open(key) as raw:
            reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))
            missing = [column for column in mapping if column not in (reader.fieldnames or [])]
            if missing:
                raise InvalidInput(N_("The file has no column {column}."), field="mapping", column=missing[0])
            batch: list[tuple[int, dict[str, Any]]] = []
            batches = 0
            for line, row in enumerate(reader, start=2):
                counts["rows"] += 1
                fields, fault = _import_row(
                    {field: row.get(column) or "" for column, field in mapping.items()}, region, definitions
                )
                if fault is not None:
                    counts["failed"] += 1
                    if len(errors) < MAX_IMPORT_ERRORS:
                        errors.append(
                            {"row": line, "field": fault[0], "reason": fault[1], "params": fault[2]}
                        )
                    continue
                batch.append((line, fields))  # type: ignore[arg-type]  # fields are checked row by row below
                if len(batch) == IMPORT_BATCH:
                    await _import_batch(runtime, organization_id, batch, on_duplicate, counts)
                    batch = []
                    batches += 1
                    if batches in ANALYZE_AFTER_BATCHES:
                        await _refresh_statistics(runtime)
                    await _import_progress(runtime, organization_id, import_id, starter, counts, errors)
            if batch:
                await _import_batch(runtime, organization_id, batch, on_duplicate, counts)
        status = "done"
    except InvalidInput as error:
        status = "failed"
        params = {name: str(value) for name, value in error.params.items()}
        errors.insert(0, {"row": 1, "field": error.field, "reason": error.message, "params": params})
    await _import_progress(runtime, organization_id, import_id, starter, counts, errors, status=status)


# PostgreSQL plans the duplicate look-ups by the table's statistics; a large import into a young
# table outgrows them long before autovacuum notices, and a plan made for a small table would scan
# the whole table for every batch. Refreshed as the table grows fourfold.
ANALYZE_AFTER_BATCHES = (1, 4, 16, 64, 256)


async def _refresh_statistics(runtime: Any) -> None:
    if not runtime.db.is_postgres:
        return
    async with runtime.db.system_session() as session:
        await session.execute(sql("ANALYZE customers"))
        await session.commit()


async def _import_batch(
    runtime: Any,
    organization_id: uuid.UUID,
    batch: list[tuple[int, dict[str, Any]]],
    on_duplicate: str,
    counts: dict[str, int],
) -> None:
    async with runtime.db.session(organization_id) as session:
        phones = [fields["phone"] for _, fields in batch if fields.get("phone")]
        emails = [fields["email"] for _, fields in batch if fields.get("email")]
        existing: dict[str, Customer] = {}
        for column, values in ((Customer.phone, phones), (Customer.email, emails)):
            if values:
                for customer in await session.scalars(select(Customer).where(column.in_(values))):
                    existing[customer.phone or ""] = customer
                    existing[customer.email or ""] = customer
        existing.pop("", None)
        if phones:  # numbers kept from merged duplicates belong to their customer too
            # Two plain look-ups, not a join: a join's plan may scan every customer for each batch.
            kept = dict(
                (
                    await session.execute(
                        select(CustomerPhone.phone, CustomerPhone.customer_id).where(
                            CustomerPhone.phone.in_(phones)
                        )
                    )
                ).all()
            )
            if kept:
                owners = {
                    c.id: c
                    for c in await session.scalars(
                        select(Customer).where(Customer.id.in_(set(kept.values())))
                    )
                }
                existing.update({number: owners[owner] for number, owner in kept.items() if owner in owners})
        companies: dict[str, uuid.UUID] = {}
        names = {fields["company"].lower() for _, fields in batch if fields.get("company")}
        if names:
            for company in await session.scalars(select(Company).where(func.lower(Company.name).in_(names))):
                companies[company.name.lower()] = company.id
        new_rows: list[dict[str, Any]] = []
        pending: dict[str, dict[str, Any]] = {}  # this batch's new rows, by phone and e-mail
        for _line, fields in batch:
            contact = [value for value in (fields.get("phone"), fields.get("email")) if value]
            company_name = fields.pop("company", None)
            if company_name and company_name.lower() not in companies:
                company = Company(name=company_name)
                session.add(company)
                await session.flush()
                companies[company_name.lower()] = company.id
            company_id = companies.get(company_name.lower()) if company_name else None
            found = next((existing[value] for value in contact if value in existing), None)
            # Earlier batches are in the database by now; earlier rows of this one are pending.
            repeated = any(value in pending for value in contact)
            if found is None and not repeated:
                now = utcnow()
                row = {
                    "id": new_id(),
                    "organization_id": organization_id,
                    "name": fields["name"],
                    "phone": fields.get("phone"),
                    "email": fields.get("email"),
                    "language": fields.get("language"),
                    "opted_out": fields.get("opted_out", False),
                    "tags": fields.get("tags", []),
                    "attributes": fields["attributes"],
                    "company_id": company_id,
                    "score": 0,
                    "score_factors": [],
                    "created_at": now,
                    "updated_at": now,
                }
                new_rows.append(row)
                for value in contact:
                    pending[value] = row
                counts["created"] += 1
            elif on_duplicate == "update" and found is None:
                row = next(pending[value] for value in contact if value in pending)  # earlier in this batch
                for field in ("name", "language", "opted_out"):
                    if field in fields:
                        row[field] = fields[field]
                row["tags"] = sorted(set(row["tags"]) | set(fields.get("tags", [])))
                row["attributes"] = {**row["attributes"], **fields["attributes"]}
                counts["updated"] += 1
            elif on_duplicate == "update" and found is not None:
                for field in ("name", "language", "opted_out"):
                    if field in fields:
                        setattr(found, field, fields[field])
                for field in ("phone", "email"):
                    value = fields.get(field)
                    if value and getattr(found, field) is None and value not in existing:
                        setattr(found, field, value)
                        existing[value] = found
                if "tags" in fields:
                    found.tags = sorted(set(found.tags or []) | set(fields["tags"]))
                found.attributes = {**(found.attributes or {}), **fields["attributes"]}
                found.company_id = found.company_id or company_id
                counts["updated"] += 1
            else:
                counts["skipped"] += 1
        if new_rows:
            # One multi-row INSERT for the batch rather than the unit of work, a tenth of the cost;
            # the rows name their organization (and on PostgreSQL row security applies).
            connection = await session.connection()
            await connection.execute(insert(table_of(Customer)), new_rows)
        await session.commit()


async def _import_progress(
    runtime: Any,
    organization_id: uuid.UUID,
    import_id: uuid.UUID,
    starter: uuid.UUID | None,
    counts: dict[str, int],
    errors: list[dict[str, Any]],
    *,
    status: str = "running",
) -> None:
    async with runtime.db.session(organization_id) as session:
        job = await get_import(session, import_id)
        for name, value in counts.items():
            setattr(job, name, value)
        job.errors = list(errors)
        job.status = status
        if status != "running":
            job.finished_at = utcnow()
        push(session, ImportProgress(import_id=import_id, status=status, **counts), people([starter]))
        await session.commit()
