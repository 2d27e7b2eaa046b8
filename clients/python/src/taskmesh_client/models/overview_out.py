from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast

if TYPE_CHECKING:
  from ..models.day_out import DayOut
  from ..models.summary_out import SummaryOut





T = TypeVar("T", bound="OverviewOut")



@_attrs_define
class OverviewOut:
    """ 
        Attributes:
            active_users (int): users with a live task or any task change in the last 30 days
            last_30_days (list[DayOut]): created/completed per UTC day, up to today
            totals (SummaryOut):
            users_with_tasks (int): users with at least one live task
     """

    active_users: int
    last_30_days: list[DayOut]
    totals: SummaryOut
    users_with_tasks: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.day_out import DayOut # noqa: PLC0415
        from ..models.summary_out import SummaryOut # noqa: PLC0415
        active_users = self.active_users

        last_30_days = []
        for last_30_days_item_data in self.last_30_days:
            last_30_days_item = last_30_days_item_data.to_dict()
            last_30_days.append(last_30_days_item)



        totals = self.totals.to_dict()

        users_with_tasks = self.users_with_tasks


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "active_users": active_users,
            "last_30_days": last_30_days,
            "totals": totals,
            "users_with_tasks": users_with_tasks,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.day_out import DayOut # noqa: PLC0415
        from ..models.summary_out import SummaryOut # noqa: PLC0415
        d = dict(src_dict)
        active_users = d.pop("active_users")

        last_30_days = []
        _last_30_days = d.pop("last_30_days")
        for last_30_days_item_data in (_last_30_days):
            last_30_days_item = DayOut.from_dict(last_30_days_item_data)



            last_30_days.append(last_30_days_item)


        totals = SummaryOut.from_dict(d.pop("totals"))




        users_with_tasks = d.pop("users_with_tasks")

        overview_out = cls(
            active_users=active_users,
            last_30_days=last_30_days,
            totals=totals,
            users_with_tasks=users_with_tasks,
        )


        overview_out.additional_properties = d
        return overview_out

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
