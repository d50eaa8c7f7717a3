"""``sts_role_arn``: SQS calls made with the temporary credentials of an assumed IAM role, as
Kombu's SQS transport takes them, renewed by botocore before they expire."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from botocore.credentials import CredentialProvider, RefreshableCredentials

from . import clients

if TYPE_CHECKING:
    import botocore.session

__all__ = ["AssumedRole"]

#: The name the role's sessions carry in CloudTrail.
SESSION_NAME = "Celeriac"


class _Provider(CredentialProvider):  # type: ignore[misc]
    """Hands botocore the role's refreshable credentials, ahead of every other source."""

    METHOD = "celeriac-sts-assume-role"
    CANONICAL_NAME = "CeleriacAssumeRole"

    def __init__(self, role: AssumedRole) -> None:
        super().__init__()
        self.role = role

    def load(self) -> RefreshableCredentials:
        return self.role.credentials


class AssumedRole:
    """One assumed role shared by a transport's clients: one ``AssumeRole`` call, then one more
    each time the credentials come within ``buffer`` seconds of their expiry."""

    def __init__(
        self,
        role_arn: str,
        duration: int,
        buffer: float,
        region: str,
        access_key: str | None = None,
        secret_key: str | None = None,
    ) -> None:
        self.role_arn = role_arn
        self.duration = duration
        # The caller's own credentials (the URL's, else botocore's usual chain) assume the role;
        # the STS endpoint is botocore's (AWS_ENDPOINT_URL_STS or the config file may point it
        # elsewhere).
        self._sts = clients.client(
            "sts",
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
        )
        self._lock = threading.Lock()
        #: AssumeRole calls made so far.
        self.calls = 0
        self.credentials = RefreshableCredentials.create_from_metadata(
            metadata=self._assume(),
            refresh_using=self._assume,
            method=_Provider.METHOD,
            # botocore refreshes without blocking other threads from ``advisory`` seconds before
            # the expiry, and blocks every request from ``mandatory`` seconds before it.
            advisory_timeout=buffer,
            mandatory_timeout=buffer / 2,
        )
        self.session = self._session(region)

    def _assume(self) -> dict[str, Any]:
        with self._lock:
            got = self._sts.assume_role(
                RoleArn=self.role_arn, RoleSessionName=SESSION_NAME, DurationSeconds=self.duration
            )["Credentials"]
            self.calls += 1
        return {
            "access_key": got["AccessKeyId"],
            "secret_key": got["SecretAccessKey"],
            "token": got["SessionToken"],
            "expiry_time": got["Expiration"].isoformat(),
        }

    def _session(self, region: str) -> botocore.session.Session:
        session = clients.role_session(_Provider(self))
        session.set_config_variable("region", region)
        return session

    def close(self) -> None:
        self._sts.close()
