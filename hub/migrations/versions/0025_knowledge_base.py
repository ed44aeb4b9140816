"""The knowledge base: each organization's articles, searchable in Arabic and English (FTS5 on
SQLite, a full-text index on PostgreSQL, both over the article's folded search form).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 19:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

import hub.db
from hub.migrate import protect_tenant_table

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

# SQLite: a full-text table beside the articles, kept by triggers. It names each article by its
# id rather than by rowid, which a VACUUM may renumber on a table keyed by something else, and
# its organization, which every search asks for.
SQLITE_SEARCH = (
    "CREATE VIRTUAL TABLE knowledge_articles_fts USING fts5(article_id UNINDEXED, "
    "organization_id UNINDEXED, search_text, tokenize = 'unicode61 remove_diacritics 2')",
    "CREATE TRIGGER knowledge_articles_fts_insert AFTER INSERT ON knowledge_articles BEGIN "
    "INSERT INTO knowledge_articles_fts (article_id, organization_id, search_text) "
    "VALUES (new.id, new.organization_id, new.search_text); END",
    "CREATE TRIGGER knowledge_articles_fts_delete AFTER DELETE ON knowledge_articles BEGIN "
    "DELETE FROM knowledge_articles_fts WHERE article_id = old.id; END",
    "CREATE TRIGGER knowledge_articles_fts_update AFTER UPDATE OF search_text ON knowledge_articles BEGIN "
    "UPDATE knowledge_articles_fts SET search_text = new.search_text WHERE article_id = new.id; END",
)
# PostgreSQL: the same expression as the search in inbox/services/knowledge.py, or it is not used.
POSTGRES_SEARCH = (
    "CREATE INDEX ix_knowledge_articles_search ON knowledge_articles "
    "USING gin (to_tsvector('simple', search_text))"
)


def _system_role() -> str:
    settings = context.config.attributes.get("settings")
    return settings.db_system_role if settings is not None else "hub_system"


def upgrade(app_role: str = "hub_app") -> None:
    op.create_table(
        "knowledge_articles",
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=5), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("embedding", sa.JSON(), nullable=True),
        sa.Column("embedding_model", sa.String(length=100), nullable=True),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_knowledge_articles_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["users.id"],
            name=op.f("fk_knowledge_articles_updated_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_articles")),
    )
    op.create_index(
        op.f("ix_knowledge_articles_organization_id"), "knowledge_articles", ["organization_id"], unique=False
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql(POSTGRES_SEARCH)
    else:
        for statement in SQLITE_SEARCH:
            bind.exec_driver_sql(statement)
    protect_tenant_table(bind, "knowledge_articles", role=app_role, system_role=_system_role())


def downgrade(app_role: str = "hub_app") -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        bind.exec_driver_sql("DROP TABLE IF EXISTS knowledge_articles_fts")
    op.drop_index(op.f("ix_knowledge_articles_organization_id"), table_name="knowledge_articles")
    op.drop_table("knowledge_articles")
