"""Registry tables: plans, sections, agencies, work points and responsibilities."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from duban_shared.db import utc_column
from duban_shared.outbox import OutboxFields
from sqlalchemy import JSON, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class RegistryBase(SQLModel, registry=registry()):
    """Base of the registry's tables: its own metadata, apart from other services'."""


class Plan(RegistryBase, table=True):
    """An annual work plan as issued."""

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=80, unique=True, index=True)
    title: str = Field(max_length=200)
    issuer: str = Field(max_length=200)
    issued_on: date
    year: int
    source_sha256: str = Field(max_length=64)
    imported_at: datetime = utc_column()


class Section(RegistryBase, table=True):
    """A numbered section of a plan (一、二、...)."""

    __table_args__ = (UniqueConstraint("plan_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="plan.id", index=True)
    number: int
    title: str = Field(max_length=200)


class Agency(RegistryBase, table=True):
    """A government body that can be held responsible for work points."""

    id: uuid.UUID = Field(primary_key=True)
    name: str = Field(max_length=120, unique=True, index=True)
    kind: str = Field(max_length=40)


class WorkPoint(RegistryBase, table=True):
    """A numbered work point (工作要点); id is '<plan slug>/<number>'."""

    __table_args__ = (UniqueConstraint("plan_id", "number"),)

    id: str = Field(primary_key=True, max_length=120)
    plan_id: int = Field(foreign_key="plan.id", index=True)
    number: int
    section_number: int
    title: str = Field(max_length=200)
    text: str
    lead_inferred: bool = False
    with_other_units: bool = False
    targets: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    revision: int = 1
    updated_at: datetime = utc_column()


class Responsibility(RegistryBase, table=True):
    """An agency's role on a work point: lead (牵头) or co-responsible."""

    __table_args__ = (UniqueConstraint("work_point_id", "agency_id"),)

    id: int | None = Field(default=None, primary_key=True)
    work_point_id: str = Field(foreign_key="workpoint.id", index=True, max_length=120)
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True)
    role: str = Field(max_length=8)
    position: int


class OutboxMessage(OutboxFields, RegistryBase, table=True):
    """Registry events waiting to be relayed to Kafka."""

    __tablename__ = "outbox"
