"""Query parameters shared by list endpoints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query

from chatkeep.errors import InvalidInput
from chatkeep.http.deps import SettingsDep


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    offset: int
    cursor: str | None


def page_params(
    settings: SettingsDep,
    limit: Annotated[int | None, Query(ge=1, description="Page size (default 50, max 500).")] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    cursor: Annotated[str | None, Query(max_length=1024, description="`next_cursor` of the previous page.")] = None,
) -> PageParams:
    if limit is not None and limit > settings.max_page_size:
        raise InvalidInput(f"limit must be at most {settings.max_page_size}", code="limit_too_large", field="limit")
    if cursor and offset:
        raise InvalidInput("use either offset or cursor, not both", code="offset_and_cursor", field="cursor")
    return PageParams(limit=limit or settings.default_page_size, offset=offset, cursor=cursor or None)


Paging = Annotated[PageParams, Depends(page_params)]
