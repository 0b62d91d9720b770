"""One error shape for every failure: ``{"code", "msg", "error", "field"}``.

``code`` is Binance's integer where Binance has the error (so Binance clients map it to
their own exceptions), a TradeX code in the -70000 range where it has not; ``error`` is the
code's stable name; ``field`` names the parameter at fault (or null). The HTTP status
comes with the code; validation errors are 400 on the Binance paths (``/api``, ``/sapi``,
as Binance answers) and 422 on the TradeX paths.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from starlette.responses import Response


class Code(NamedTuple):
    code: int
    name: str
    status: int
    msg: str  # default message


UNKNOWN = Code(-1000, "UNKNOWN", 500, "An unknown error occurred while processing the request.")
UNAUTHORIZED = Code(-1002, "UNAUTHORIZED", 401, "You are not authorized to execute this request.")
TOO_MANY_REQUESTS = Code(-1003, "TOO_MANY_REQUESTS", 429, "Too many requests; please slow down.")
TIMEOUT = Code(
    -1007, "TIMEOUT", 503,
    "Timeout waiting for response from backend server. Send status unknown; "
    "execution status unknown.",
)  # fmt: skip
FILTER_FAILURE = Code(-1013, "FILTER_FAILURE", 400, "Filter failure.")
TOO_MANY_ORDERS = Code(-1015, "TOO_MANY_ORDERS", 429, "Too many new orders.")
INVALID_TIMESTAMP = Code(
    -1021, "INVALID_TIMESTAMP", 401, "Timestamp for this request is outside of the recvWindow."
)
INVALID_SIGNATURE = Code(
    -1022, "INVALID_SIGNATURE", 401, "Signature for this request is not valid."
)
ILLEGAL_CHARS = Code(-1100, "ILLEGAL_CHARS", 400, "Illegal characters found in a parameter.")
MANDATORY_PARAM = Code(
    -1102, "MANDATORY_PARAM_EMPTY_OR_MALFORMED", 400,
    "A mandatory parameter was not sent, was empty/null, or malformed.",
)  # fmt: skip
BAD_PRECISION = Code(
    -1111, "BAD_PRECISION", 400, "Precision is over the maximum defined for this asset."
)
PARAM_NOT_REQUIRED = Code(-1106, "PARAM_NOT_REQUIRED", 400, "Parameter sent when not required.")
BAD_SYMBOL = Code(-1121, "BAD_SYMBOL", 400, "Invalid symbol.")
INVALID_LISTEN_KEY = Code(-1125, "INVALID_LISTEN_KEY", 400, "This listenKey does not exist.")
INVALID_PARAMETER = Code(-1130, "INVALID_PARAMETER", 400, "Invalid data sent for a parameter.")
NEW_ORDER_REJECTED = Code(-2010, "NEW_ORDER_REJECTED", 400, "New order rejected.")
CANCEL_REJECTED = Code(-2011, "CANCEL_REJECTED", 400, "Unknown order sent.")
NO_SUCH_ORDER = Code(-2013, "NO_SUCH_ORDER", 404, "Order does not exist.")
CANCEL_REPLACE_PARTIAL = Code(
    -2021, "CANCEL_REPLACE_PARTIAL", 409, "Order cancel-replace partially failed."
)
CANCEL_REPLACE_FAILED = Code(-2022, "CANCEL_REPLACE_FAILED", 400, "Order cancel-replace failed.")
BAD_API_KEY_FMT = Code(-2014, "BAD_API_KEY_FMT", 401, "API-key format invalid.")
REJECTED_MBX_KEY = Code(
    -2015, "REJECTED_MBX_KEY", 401, "Invalid API-key, IP, or permissions for action."
)
# TradeX codes
TOKEN_INVALID = Code(-70001, "TOKEN_INVALID", 401, "Invalid, expired or revoked access token.")
CREDENTIALS_INVALID = Code(-70002, "CREDENTIALS_INVALID", 401, "Invalid username or password.")
LOGIN_LOCKED = Code(-70003, "LOGIN_LOCKED", 401, "Too many failed logins; try again later.")
FORBIDDEN = Code(-70004, "FORBIDDEN", 403, "Your roles do not allow this request.")
NOT_FOUND = Code(-70005, "NOT_FOUND", 404, "Not found.")
IDEMPOTENCY_CONFLICT = Code(
    -70006, "IDEMPOTENCY_CONFLICT", 409, "This key was used for a different request."
)
ALREADY_EXISTS = Code(-70007, "ALREADY_EXISTS", 409, "Already exists.")
COMMAND_REJECTED = Code(-70008, "COMMAND_REJECTED", 400, "The command was rejected.")
MAKER_CHECKER = Code(
    -70009,
    "MAKER_CHECKER",
    403,
    "A user cannot check their own request (a withdrawal they asked for, their own roles).",
)
REFRESH_INVALID = Code(
    -70010, "REFRESH_INVALID", 401, "Invalid, used, expired or revoked refresh token."
)
SIGNATURE_REPLAYED = Code(
    -70011, "SIGNATURE_REPLAYED", 401, "This signature was already used: sign again."
)
NOT_LIVE = Code(-70012, "NOT_LIVE", 503, "The read model is not ready yet.")
PERMISSION_DENIED = Code(
    -70013, "PERMISSION_DENIED", 403, "This API key lacks the permission for this request."
)


class ApiError(Exception):
    """Raised anywhere in a request; rendered by the app as the one error shape."""

    def __init__(
        self, code: Code, msg: str | None = None, field: str | None = None,
        status: int | None = None, headers: dict[str, str] | None = None,
        data: dict[str, object] | None = None,
    ) -> None:  # fmt: skip
        """``data``: the details some errors carry (Binance's cancel-replace outcomes)."""
        super().__init__(msg or code.msg)
        self.code = code
        self.msg = msg or code.msg
        self.field = field
        self.status = status or code.status
        self.headers = headers or {}
        self.data = data

    def body(self) -> dict[str, object]:
        found: dict[str, object] = {"code": self.code.code, "msg": self.msg,
                                    "error": self.code.name, "field": self.field}  # fmt: skip
        if self.data is not None:
            found["data"] = self.data
        return found

    def response(self) -> Response:
        return Response(
            json.dumps(self.body()), self.status, self.headers, media_type="application/json"
        )


def param_error(code: Code, field: str, msg: str, tradex: bool) -> ApiError:
    """A parameter error: Binance's code and 400 on Binance paths, 422 on TradeX paths."""
    return ApiError(code, msg, field, 422 if tradex else code.status)


ALL_CODES = tuple(value for value in globals().values() if isinstance(value, Code))
