from enum import StrEnum

class SortOrder(StrEnum):
    CREATED_AT = "created_at"
    DUE_DATE = "due_date"
    PRIORITY = "priority"
    VALUE_0 = "-created_at"

    def __str__(self) -> str:
        return str(self.value)
