"""Azure ML's authentication classes on pipesched, where a client proves itself with a bearer
token (``pipesched token create NAME``) rather than an Azure identity.

A notebook that calls a published pipeline's endpoint does:

    auth = InteractiveLoginAuthentication()
    auth_header = auth.get_authentication_header()
    requests.post(published.endpoint, headers=auth_header, json={"ExperimentName": "x"})

so each class accepts Azure's constructor arguments (warning once that the Azure identity is not
used) and ``get_authentication_header()`` gives pipesched's header for the token in
``$PIPESCHED_TOKEN``, or the token of the daemon workspace the object was given to.
"""

from __future__ import annotations

import os
from typing import Any

from scheduler.sdk._warn import ignore_given

ENV_TOKEN = "PIPESCHED_TOKEN"
_IDENTITY = "pipesched authenticates with a bearer token ($PIPESCHED_TOKEN), not an Azure identity"


class AbstractAuthentication:
    """What the three classes share: the bearer header of the configured token."""

    def __init__(self) -> None:
        self._workspace_token: str | None = None

    def get_token(self) -> str | None:
        """The token used: the daemon workspace's, else ``$PIPESCHED_TOKEN``, else None."""
        return self._workspace_token or os.environ.get(ENV_TOKEN) or None

    def get_authentication_header(self) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}``, or ``{}`` when no token is configured (an
        embedded workspace needs none; a daemon's ``/api/`` paths answer 401 without one)."""
        token = self.get_token()
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _bind(self, token: str) -> None:
        """Remember the token of the daemon workspace this object was passed to."""
        self._workspace_token = token

    def __repr__(self) -> str:  # never shows a token or a password
        return f"{type(self).__name__}()"


class InteractiveLoginAuthentication(AbstractAuthentication):
    """Azure's browser login: nothing to log in to here."""

    def __init__(
        self, force: bool = False, tenant_id: str | None = None, cloud: Any = None
    ) -> None:
        super().__init__()
        ignore_given(
            "InteractiveLoginAuthentication",
            {"force": force, "tenant_id": tenant_id, "cloud": cloud},
            dict.fromkeys(("force", "tenant_id", "cloud"), _IDENTITY),
        )


class ServicePrincipalAuthentication(AbstractAuthentication):
    """Azure's service principal (CI pipelines): its secret is not kept."""

    def __init__(
        self,
        tenant_id: str,
        service_principal_id: str,
        service_principal_password: str,
        cloud: str = "AzureCloud",
        _enable_caching: bool = True,
    ) -> None:
        super().__init__()
        ignore_given(
            "ServicePrincipalAuthentication",
            {
                "tenant_id": tenant_id,
                "service_principal_id": service_principal_id,
                "service_principal_password": service_principal_password,
            },
            dict.fromkeys(
                ("tenant_id", "service_principal_id", "service_principal_password"), _IDENTITY
            ),
        )


class MsiAuthentication(AbstractAuthentication):
    """Azure's managed identity of a VM: none here."""

    def __init__(self, cloud: Any = None, identity_config: Any = None) -> None:
        super().__init__()
        ignore_given(
            "MsiAuthentication",
            {"cloud": cloud, "identity_config": identity_config},
            dict.fromkeys(("cloud", "identity_config"), _IDENTITY),
        )
