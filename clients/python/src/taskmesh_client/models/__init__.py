""" Contains all the data models used in inputs/outputs """

from .access_token_response import AccessTokenResponse
from .day_out import DayOut
from .login_request import LoginRequest
from .logout_request import LogoutRequest
from .overview_out import OverviewOut
from .password_change import PasswordChange
from .password_confirmation import PasswordConfirmation
from .priority import Priority
from .problem import Problem
from .problem_errors_item import ProblemErrorsItem
from .refresh_request import RefreshRequest
from .register_request import RegisterRequest
from .rotate_keys_response_rotate_keys import RotateKeysResponseRotateKeys
from .sort_order import SortOrder
from .status import Status
from .summary_out import SummaryOut
from .summary_out_by_priority import SummaryOutByPriority
from .summary_out_by_status import SummaryOutByStatus
from .task_create import TaskCreate
from .task_out import TaskOut
from .task_page import TaskPage
from .task_patch import TaskPatch
from .timeline_out import TimelineOut
from .token_response import TokenResponse
from .user_change import UserChange
from .user_change_role_type_0 import UserChangeRoleType0
from .user_out import UserOut
from .user_out_role import UserOutRole
from .users_page import UsersPage

__all__ = (
    "AccessTokenResponse",
    "DayOut",
    "LoginRequest",
    "LogoutRequest",
    "OverviewOut",
    "PasswordChange",
    "PasswordConfirmation",
    "Priority",
    "Problem",
    "ProblemErrorsItem",
    "RefreshRequest",
    "RegisterRequest",
    "RotateKeysResponseRotateKeys",
    "SortOrder",
    "Status",
    "SummaryOut",
    "SummaryOutByPriority",
    "SummaryOutByStatus",
    "TaskCreate",
    "TaskOut",
    "TaskPage",
    "TaskPatch",
    "TimelineOut",
    "TokenResponse",
    "UserChange",
    "UserChangeRoleType0",
    "UserOut",
    "UserOutRole",
    "UsersPage",
)
