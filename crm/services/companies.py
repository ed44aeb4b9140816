"""Companies, one per domain."""

from __future__ import annotations

import uuid

from msgspec import UNSET
from sqlalchemy import func, or_, select

from crm.models import Company
from crm.schemas import CompanyIn, CompanyUpdate
from hub.db import HubAsyncSession
from hub.errors import Conflict, InvalidInput, NotFound
from hub.i18n import N_
from hub.pagination import paginate


def _domain(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    domain = raw.strip().lower().removeprefix("https://").removeprefix("http://").split("/")[0]
    domain = domain.removeprefix("www.")
    if "." not in domain or " " in domain:
        raise InvalidInput(N_("This is not a valid domain."), field="domain")
    return domain


async def _refuse_duplicate_domain(
    session: HubAsyncSession, domain: str | None, other_than: uuid.UUID | None = None
) -> None:
    if domain is None:
        return
    existing = await session.scalar(select(Company.id).where(Company.domain == domain))
    if existing is not None and existing != other_than:
        raise Conflict(
            N_("A company with this domain exists already."),
            field="domain",
            extra={"existing_id": str(existing)},
        )


async def create_company(session: HubAsyncSession, data: CompanyIn) -> Company:
    domain = _domain(data.domain)
    await _refuse_duplicate_domain(session, domain)
    company = Company(name=data.name.strip(), domain=domain, sector=data.sector, size=data.size)
    session.add(company)
    await session.commit()
    return company


async def get_company(session: HubAsyncSession, company_id: uuid.UUID) -> Company:
    company = await session.get(Company, company_id)
    if company is None:
        raise NotFound()
    return company


async def update_company(session: HubAsyncSession, company_id: uuid.UUID, data: CompanyUpdate) -> Company:
    company = await get_company(session, company_id)
    if data.domain is not UNSET:
        domain = _domain(data.domain)
        await _refuse_duplicate_domain(session, domain, other_than=company.id)
        company.domain = domain
    if data.name is not UNSET:
        company.name = data.name.strip()
    if data.sector is not UNSET:
        company.sector = data.sector
    if data.size is not UNSET:
        company.size = data.size
    await session.commit()
    return company


async def delete_company(session: HubAsyncSession, company_id: uuid.UUID) -> None:
    await session.delete(await get_company(session, company_id))
    await session.commit()


async def list_companies(
    session: HubAsyncSession, *, query: str | None, cursor: str | None, limit: int
) -> tuple[list[Company], str | None]:
    statement = select(Company)
    if query and query.strip():
        needle = f"%{query.strip().lower()}%"
        statement = statement.where(or_(func.lower(Company.name).like(needle), Company.domain.like(needle)))
    rows, next_cursor = await paginate(session, statement, Company.id, cursor=cursor, limit=limit)
    return [row[0] for row in rows], next_cursor
