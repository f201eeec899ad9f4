"""$connect echoes the `bearer` subprotocol a browser offers with its token."""

from __future__ import annotations

from services.query.transports.lambda_handler import connect_response
from tests.query.events import connect_event, new_connection_id


def test_browser_token_subprotocol_is_answered_with_bearer_only() -> None:
    # GIVEN a browser that sent its token as a WebSocket subprotocol
    event = connect_event(new_connection_id(), subprotocols="bearer, s3cr3t-token")
    # WHEN the connection is accepted
    response = connect_response(event)
    # THEN only `bearer` is echoed, never the token
    assert response == {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "bearer"}}


def test_plain_connect_gets_no_subprotocol_header() -> None:
    assert connect_response(connect_event(new_connection_id())) == {"statusCode": 200}
