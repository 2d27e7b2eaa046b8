from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.priority import Priority
from ..models.status import Status
from typing import cast
import datetime






T = TypeVar("T", bound="TaskOut")



@_attrs_define
class TaskOut:
    """ 
        Attributes:
            completed_at (datetime.datetime | None):
            created_at (datetime.datetime):
            description (str):
            due_date (datetime.datetime | None):
            id (str):
            owner_id (str):
            priority (Priority):
            status (Status):
            tags (list[str]):
            title (str):
            updated_at (datetime.datetime):
            version (int):
     """

    completed_at: datetime.datetime | None
    created_at: datetime.datetime
    description: str
    due_date: datetime.datetime | None
    id: str
    owner_id: str
    priority: Priority
    status: Status
    tags: list[str]
    title: str
    updated_at: datetime.datetime
    version: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        completed_at: None | str
        if isinstance(self.completed_at, datetime.datetime):
            completed_at = self.completed_at.isoformat()
        else:
            completed_at = self.completed_at

        created_at = self.created_at.isoformat()

        description = self.description

        due_date: None | str
        if isinstance(self.due_date, datetime.datetime):
            due_date = self.due_date.isoformat()
        else:
            due_date = self.due_date

        id = self.id

        owner_id = self.owner_id

        priority = self.priority.value

        status = self.status.value

        tags = self.tags



        title = self.title

        updated_at = self.updated_at.isoformat()

        version = self.version


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "completed_at": completed_at,
            "created_at": created_at,
            "description": description,
            "due_date": due_date,
            "id": id,
            "owner_id": owner_id,
            "priority": priority,
            "status": status,
            "tags": tags,
            "title": title,
            "updated_at": updated_at,
            "version": version,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        def _parse_completed_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                completed_at_type_0 = datetime.datetime.fromisoformat(data)



                return completed_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        completed_at = _parse_completed_at(d.pop("completed_at"))


        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))




        description = d.pop("description")

        def _parse_due_date(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                due_date_type_0 = datetime.datetime.fromisoformat(data)



                return due_date_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        due_date = _parse_due_date(d.pop("due_date"))


        id = d.pop("id")

        owner_id = d.pop("owner_id")

        priority = Priority(d.pop("priority"))




        status = Status(d.pop("status"))




        tags = cast(list[str], d.pop("tags"))


        title = d.pop("title")

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))




        version = d.pop("version")

        task_out = cls(
            completed_at=completed_at,
            created_at=created_at,
            description=description,
            due_date=due_date,
            id=id,
            owner_id=owner_id,
            priority=priority,
            status=status,
            tags=tags,
            title=title,
            updated_at=updated_at,
            version=version,
        )


        task_out.additional_properties = d
        return task_out

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
