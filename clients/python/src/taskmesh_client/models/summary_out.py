from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from typing import cast
import datetime

if TYPE_CHECKING:
  from ..models.summary_out_by_priority import SummaryOutByPriority
  from ..models.summary_out_by_status import SummaryOutByStatus





T = TypeVar("T", bound="SummaryOut")



@_attrs_define
class SummaryOut:
    """ 
        Attributes:
            avg_completion_seconds (float | None): mean of completed_at - created_at over completed tasks
            by_priority (SummaryOutByPriority): every priority, zeros included
            by_status (SummaryOutByStatus): every status, zeros included
            completed (int): tasks done now (a reopened task is not)
            completion_rate (float): completed / total, 0 without tasks
            overdue (int): not done and due_date before now
            total (int): live tasks (deleted ones are not counted)
            updated_at (datetime.datetime | None): time of the last change counted
     """

    avg_completion_seconds: float | None
    by_priority: SummaryOutByPriority
    by_status: SummaryOutByStatus
    completed: int
    completion_rate: float
    overdue: int
    total: int
    updated_at: datetime.datetime | None
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.summary_out_by_priority import SummaryOutByPriority # noqa: PLC0415
        from ..models.summary_out_by_status import SummaryOutByStatus # noqa: PLC0415
        avg_completion_seconds: float | None
        avg_completion_seconds = self.avg_completion_seconds

        by_priority = self.by_priority.to_dict()

        by_status = self.by_status.to_dict()

        completed = self.completed

        completion_rate = self.completion_rate

        overdue = self.overdue

        total = self.total

        updated_at: None | str
        if isinstance(self.updated_at, datetime.datetime):
            updated_at = self.updated_at.isoformat()
        else:
            updated_at = self.updated_at


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "avg_completion_seconds": avg_completion_seconds,
            "by_priority": by_priority,
            "by_status": by_status,
            "completed": completed,
            "completion_rate": completion_rate,
            "overdue": overdue,
            "total": total,
            "updated_at": updated_at,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.summary_out_by_priority import SummaryOutByPriority # noqa: PLC0415
        from ..models.summary_out_by_status import SummaryOutByStatus # noqa: PLC0415
        d = dict(src_dict)
        def _parse_avg_completion_seconds(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        avg_completion_seconds = _parse_avg_completion_seconds(d.pop("avg_completion_seconds"))


        by_priority = SummaryOutByPriority.from_dict(d.pop("by_priority"))




        by_status = SummaryOutByStatus.from_dict(d.pop("by_status"))




        completed = d.pop("completed")

        completion_rate = d.pop("completion_rate")

        overdue = d.pop("overdue")

        total = d.pop("total")

        def _parse_updated_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                updated_at_type_0 = datetime.datetime.fromisoformat(data)



                return updated_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        updated_at = _parse_updated_at(d.pop("updated_at"))


        summary_out = cls(
            avg_completion_seconds=avg_completion_seconds,
            by_priority=by_priority,
            by_status=by_status,
            completed=completed,
            completion_rate=completion_rate,
            overdue=overdue,
            total=total,
            updated_at=updated_at,
        )


        summary_out.additional_properties = d
        return summary_out

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
