"""Personal accounts in the database: add, find, list. The functions take a session and do not
commit; the use cases (use_cases.accounts) own the transaction and the rules."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from registry.domain.accounts import AccountError
from registry.store.auth_models import Account
from registry.store.models import Agency


async def find(session: AsyncSession, username: str, *, for_update: bool = False) -> Account | None:
    """The account of a username, or None (locked for the transaction with `for_update`)."""
    query = select(Account).where(Account.username == username)
    if for_update:
        query = query.with_for_update()
    return (await session.exec(query)).first()


async def get(session: AsyncSession, username: str) -> Account:
    """The account of a username, locked for the transaction; 404 unknown_account if none."""
    account = await find(session, username, for_update=True)
    if account is None:
        raise AccountError(
            404,
            "unknown_account",
            f"没有用户名为“{username}”的账号;请用 GET /v1/accounts 查看现有账号。",
        )
    return account


async def add(session: AsyncSession, account: Account) -> None:
    """Insert a new account; 409 username_taken when the username exists."""
    if await find(session, account.username) is not None:
        raise AccountError(
            409, "username_taken", f"用户名“{account.username}”已被使用,请换一个用户名。"
        )
    session.add(account)
    try:
        await session.flush()
    except IntegrityError:  # created at the same moment by another request
        raise AccountError(
            409, "username_taken", f"用户名“{account.username}”已被使用,请换一个用户名。"
        ) from None


async def agency_name(session: AsyncSession, account: Account) -> str | None:
    """The name of an account's agency, if it has one."""
    if account.agency_id is None:
        return None
    agency = await session.get(Agency, account.agency_id)
    return agency.name if agency is not None else None


async def list_all(session: AsyncSession) -> list[tuple[Account, str | None]]:
    """Every account with its agency's name, by username."""
    rows = await session.exec(
        select(Account, Agency.name)
        .outerjoin(Agency, col(Account.agency_id) == col(Agency.id))
        .order_by(col(Account.username))
    )
    return [(account, name) for account, name in rows.all()]
