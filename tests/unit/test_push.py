"""Push through SNS platform endpoints (moto's SNS): one payload per platform with the cascade in
it, the endpoint found again for a known token, and a disabled endpoint refused for good."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cascade.channels.base import Outgoing
from cascade.channels.push import PushChannel, payload, title
from cascade.errors import PermanentSendError


def _message(subject: str | None = "Courier at 14:00", device: str = "device-token-1") -> Outgoing:
    return Outgoing(cascade_id="c_1", step=0, to=device, text="Ivan brings your order today, 14:00-16:00.",
                    subject=subject, context={"scenario": {"id": "courier", "name": "Courier on the way"}})


@pytest.fixture
def sns() -> Iterator[tuple[Any, str]]:
    with mock_aws():
        client = boto3.client("sns", region_name="us-east-1")
        app = client.create_platform_application(Name="app", Platform="GCM",
                                                 Attributes={"PlatformCredential": "key"})["PlatformApplicationArn"]
        yield client, app


def _published(client: Any, endpoint_arn: str) -> list[dict[str, Any]]:
    from moto.sns.models import sns_backends

    endpoint = sns_backends["123456789012"]["us-east-1"].platform_endpoints[endpoint_arn]
    return [json.loads(m) for m in endpoint.messages.values()]


def test_the_payload_has_the_alert_and_the_cascade_for_each_platform() -> None:
    envelope = json.loads(payload(_message()))
    fcm, apns = json.loads(envelope["GCM"]), json.loads(envelope["APNS"])
    assert fcm == {"notification": {"title": "Courier at 14:00", "body": "Ivan brings your order today, 14:00-16:00."},
                   "data": {"cascade_id": "c_1", "step": "0"}}  # FCM data values are strings
    assert apns["aps"]["alert"] == fcm["notification"] and (apns["cascade_id"], apns["step"]) == ("c_1", 0)
    assert json.loads(envelope["APNS_SANDBOX"]) == apns
    assert envelope["default"] == "Ivan brings your order today, 14:00-16:00."


def test_without_a_subject_the_title_is_the_scenario_name() -> None:
    assert title(_message(subject=None)) == "Courier on the way"


def test_a_push_goes_to_the_tokens_endpoint(sns: tuple[Any, str]) -> None:
    client, app = sns
    sent = PushChannel(client, app).send(_message())
    endpoint = client.list_endpoints_by_platform_application(PlatformApplicationArn=app)["Endpoints"]
    assert [e["Attributes"]["Token"] for e in endpoint] == ["device-token-1"]
    published = _published(client, endpoint[0]["EndpointArn"])
    assert len(published) == 1 and sent.provider_message_id
    # The same token again: the same endpoint (CreatePlatformEndpoint is idempotent).
    PushChannel(client, app).send(_message())
    assert len(client.list_endpoints_by_platform_application(PlatformApplicationArn=app)["Endpoints"]) == 1


def test_an_endpoint_registered_with_other_attributes_is_found_from_the_error(sns: tuple[Any, str]) -> None:
    client, app = sns
    arn = client.create_platform_endpoint(PlatformApplicationArn=app, Token="device-token-1",
                                          CustomUserData="registered by the app")["EndpointArn"]
    PushChannel(client, app).send(_message())
    assert len(_published(client, arn)) == 1


def test_a_disabled_endpoint_is_refused_for_good(sns: tuple[Any, str]) -> None:
    client, app = sns
    arn = client.create_platform_endpoint(PlatformApplicationArn=app, Token="device-token-1")["EndpointArn"]
    client.set_endpoint_attributes(EndpointArn=arn, Attributes={"Enabled": "false"})
    with pytest.raises(PermanentSendError, match="disabled"):
        PushChannel(client, app).send(_message())
    assert _published(client, arn) == []


def test_without_a_platform_application_push_is_not_configured() -> None:
    with pytest.raises(PermanentSendError, match="not configured"):
        PushChannel(object(), "").send(_message())
