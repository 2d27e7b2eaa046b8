from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.priority import Priority
from ..types import UNSET, Unset
from typing import cast
import datetime






T = TypeVar("T", bound="TaskCreate")



@_attrs_define
class TaskCreate:
    """ 
        Attributes:
            title (str):
            description (str | Unset):  Default: ''.
            due_date (datetime.datetime | None | Unset):
            priority (Priority | Unset):
            tags (list[str] | Unset):
     """

    title: str
    description: str | Unset = ''
    due_date: datetime.datetime | None | Unset = UNSET
    priority: Priority | Unset = UNSET
    tags: list[str] | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        title = self.title

        description = self.description

        due_date: None | str | Unset
        if isinstance(self.due_date, Unset):
            due_date = UNSET
        elif isinstance(self.due_date, datetime.datetime):
            due_date = self.due_date.isoformat()
        else:
            due_date = self.due_date

        priority: str | Unset = UNSET
        if not isinstance(self.priority, Unset):
            priority = self.priority.value


        tags: list[str] | Unset = UNSET
        if not isinstance(self.tags, Unset):
            tags = self.tags




        field_dict: dict[str, Any] = {}

        field_dict.update({
            "title": title,
        })
        if description is not UNSET:
            field_dict["description"] = description
        if due_date is not UNSET:
            field_dict["due_date"] = due_date
        if priority is not UNSET:
            field_dict["priority"] = priority
        if tags is not UNSET:
            field_dict["tags"] = tags

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        title = d.pop("title")

        description = d.pop("description", UNSET)

        def _parse_due_date(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                due_date_type_0 = datetime.datetime.fromisoformat(data)



                return due_date_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        due_date = _parse_due_date(d.pop("due_date", UNSET))


        _priority = d.pop("priority", UNSET)
        priority: Priority | Unset
        if isinstance(_priority,  Unset):
            priority = UNSET
        else:
            priority = Priority(_priority)




        tags = cast(list[str], d.pop("tags", UNSET))


        task_create = cls(
            title=title,
            description=description,
            due_date=due_date,
            priority=priority,
            tags=tags,
        )

        return task_create

