"""Interoperability with authlib, a widely used Python OAuth 2.0 client library.

The real `tessera` binary is started by `.ci/interop`, which passes its address and the
credentials of two confidential clients, a public client and a partner shopper in the
environment. Everything here goes
through authlib's own API: RFC 8414 discovery and validation, then a client configured
from the metadata document for the client-credentials, password (anonymous), partner
shopper and refresh grants, RFC 7662 introspection and RFC 7009 revocation, with
`client_secret_basic` and with `client_secret_post` (and `none` for the public client).
"""

import os
from dataclasses import dataclass

import pytest
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata, get_well_known_url

#: Ceiling on any one request, in seconds; nothing waits for time to pass.
TIMEOUT = 60

#: The client authentication methods of RFC 7591 §2 that Tessera must take.
AUTH_METHODS = ("client_secret_basic", "client_secret_post")


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str


@dataclass(frozen=True)
class Tessera:
    """The running server and what `.ci/interop` created in its store."""

    base_url: str
    client: Credentials
    other: Credentials
    public_client_id: str
    external_reference_id: str
    shopper_user_id: str


def _env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run these tests through .ci/interop")
    return value


@pytest.fixture(scope="session")
def tessera():
    return Tessera(
        base_url=_env("INTEROP_BASE_URL"),
        client=Credentials(_env("INTEROP_CLIENT_ID"), _env("INTEROP_CLIENT_SECRET")),
        other=Credentials(
            _env("INTEROP_OTHER_CLIENT_ID"), _env("INTEROP_OTHER_CLIENT_SECRET")
        ),
        public_client_id=_env("INTEROP_PUBLIC_CLIENT_ID"),
        external_reference_id=_env("INTEROP_EXTERNAL_REFERENCE_ID"),
        shopper_user_id=_env("INTEROP_SHOPPER_USER_ID"),
    )


@pytest.fixture(scope="session")
def metadata(tessera):
    """Discovery (RFC 8414 §3): the issuer is the bound address when `--issuer` is not
    given, so the well-known URL is derived from it the way authlib derives it."""
    url = get_well_known_url(tessera.base_url, external=True)
    with OAuth2Session(trust_env=False, default_timeout=TIMEOUT) as session:
        response = session.get(url, withhold_token=True)
    assert response.status_code == 200, response.text
    document = AuthorizationServerMetadata(response.json())
    document.validate()
    return document


def oauth_session(metadata, credentials, method="client_secret_basic"):
    """An authlib session configured from the metadata document, as authlib's own
    framework integrations configure theirs (`client_kwargs.update(metadata)`)."""
    return OAuth2Session(
        client_id=credentials.client_id,
        client_secret=credentials.client_secret,
        token_endpoint_auth_method=method,
        revocation_endpoint_auth_method=method,
        trust_env=False,
        default_timeout=TIMEOUT,
        **metadata,
    )


def introspect(session, token, hint=None):
    response = session.introspect_token(
        session.metadata["introspection_endpoint"], token=token, token_type_hint=hint
    )
    assert response.status_code == 200, response.text
    return response.json()


def revoke(session, token, hint=None):
    return session.revoke_token(
        session.metadata["revocation_endpoint"], token=token, token_type_hint=hint
    )


def assert_active(answer, client_id, token_type="bearer"):
    assert answer["active"] is True, answer
    assert answer["client_id"] == client_id
    assert answer["token_type"].lower() == token_type
    assert isinstance(answer["exp"], int) and isinstance(answer["iat"], int), answer
    assert answer["exp"] > answer["iat"]
    assert answer["sid"], answer


def assert_inactive(answer):
    # RFC 7662 §2.2, API.md §6: nothing but `active` for anything inactive.
    assert answer == {"active": False}


def test_the_metadata_document_is_valid_rfc_8414_and_names_every_endpoint(
    tessera, metadata
):
    assert metadata["issuer"] == tessera.base_url
    for endpoint in ("token_endpoint", "introspection_endpoint", "revocation_endpoint"):
        assert metadata[endpoint].startswith(tessera.base_url + "/"), endpoint
    assert {"client_credentials", "password", "refresh_token"} <= set(
        metadata.grant_types_supported
    )
    for methods in (
        metadata.token_endpoint_auth_methods_supported,
        metadata.introspection_endpoint_auth_methods_supported,
        metadata.revocation_endpoint_auth_methods_supported,
    ):
        assert set(AUTH_METHODS) <= set(methods)


@pytest.mark.parametrize("method", AUTH_METHODS)
def test_client_credentials_give_a_client_token(tessera, metadata, method):
    with oauth_session(metadata, tessera.client, method) as session:
        token = session.fetch_token(grant_type="client_credentials")
        assert token["token_type"].lower() == "bearer"
        assert isinstance(token["expires_in"], int) and token["expires_in"] > 0
        assert not token.is_expired()
        assert "refresh_token" not in token
        assert_active(introspect(session, token["access_token"]), tessera.client.client_id)


@pytest.mark.parametrize("method", AUTH_METHODS)
def test_a_wrong_secret_is_invalid_client_on_every_endpoint(tessera, metadata, method):
    with oauth_session(metadata, tessera.client) as good:
        live = good.fetch_token(grant_type="password")["access_token"]
    wrong = Credentials(tessera.client.client_id, tessera.client.client_secret + "x")
    with oauth_session(metadata, wrong, method) as session:
        with pytest.raises(OAuthError) as refused:
            session.fetch_token(grant_type="client_credentials")
        assert refused.value.error == "invalid_client"
        for response in (
            session.introspect_token(metadata["introspection_endpoint"], token=live),
            revoke(session, live),
        ):
            assert response.status_code == 401, response.text
            assert response.json()["error"] == "invalid_client"
            if method == "client_secret_basic":
                assert response.headers["WWW-Authenticate"].lower().startswith("basic ")
    with oauth_session(metadata, tessera.client) as good:
        assert_active(introspect(good, live), tessera.client.client_id)


@pytest.mark.parametrize("method", AUTH_METHODS)
def test_a_refresh_rotates_the_refresh_token_and_a_replay_is_invalid_grant(
    tessera, metadata, method
):
    with oauth_session(metadata, tessera.client, method) as session:
        # The anonymous (limited) token: the password grant without a username.
        first = session.fetch_token(grant_type="password")
        old_refresh = first["refresh_token"]

        second = session.refresh_token(refresh_token=old_refresh)
        assert second["refresh_token"] != old_refresh
        assert second["access_token"] != first["access_token"]
        assert session.token["access_token"] == second["access_token"]
        renewed = introspect(session, second["access_token"])
        assert_active(renewed, tessera.client.client_id)
        assert_inactive(introspect(session, old_refresh, "refresh_token"))

        with pytest.raises(OAuthError) as replay:
            session.refresh_token(refresh_token=old_refresh)
        assert replay.value.error == "invalid_grant"
        # Reuse detection (RFC 9700 §4.14.2): the replay ended the whole session.
        assert_inactive(introspect(session, second["access_token"]))
        assert_inactive(introspect(session, second["refresh_token"], "refresh_token"))


def test_a_partner_shopper_session_refreshes_and_names_its_shopper(tessera, metadata):
    with oauth_session(metadata, tessera.client) as session:
        token = session.fetch_token(
            grant_type="client_credentials",
            dr_external_reference_id=tessera.external_reference_id,
        )
        before = introspect(session, token["access_token"])
        assert_active(before, tessera.client.client_id)
        assert before["sub"] == tessera.shopper_user_id

        refreshed = session.refresh_token(refresh_token=token["refresh_token"])
        after = introspect(session, refreshed["access_token"])
        assert_active(after, tessera.client.client_id)
        assert (after["sub"], after["sid"]) == (before["sub"], before["sid"])

        with pytest.raises(OAuthError) as unknown:
            session.fetch_token(
                grant_type="client_credentials",
                dr_external_reference_id="nobody-by-that-id",
            )
        assert unknown.value.error == "invalid_grant"


def test_introspection_tells_active_tokens_from_everything_else(tessera, metadata):
    with oauth_session(metadata, tessera.client) as session:
        token = session.fetch_token(grant_type="password")
        access = introspect(session, token["access_token"], "access_token")
        assert_active(access, tessera.client.client_id)
        assert access["sub"], "an anonymous visitor is a shopper too"

        refresh = introspect(session, token["refresh_token"], "refresh_token")
        assert_active(refresh, tessera.client.client_id, token_type="refresh_token")
        assert refresh["sid"] == access["sid"]
        # A wrong hint is only a hint (RFC 7662 §2.1).
        assert introspect(session, token["refresh_token"], "access_token")["active"]

        for garbage in ("not-a-token", "tsa_x_y", token["access_token"] + "x"):
            assert_inactive(introspect(session, garbage))

    with oauth_session(metadata, tessera.other) as other:
        assert_inactive(introspect(other, token["access_token"]))
        assert_inactive(introspect(other, token["refresh_token"]))


@pytest.mark.parametrize("method", AUTH_METHODS)
def test_revocation_ends_tokens_and_refuses_another_clients(tessera, metadata, method):
    with oauth_session(metadata, tessera.client, method) as session:
        first = session.fetch_token(grant_type="password")
        response = revoke(session, first["access_token"], "access_token")
        assert response.status_code == 200, response.text
        assert_inactive(introspect(session, first["access_token"]))

        # A refresh token ends its whole session.
        second = session.fetch_token(grant_type="password")
        response = revoke(session, second["refresh_token"], "refresh_token")
        assert response.status_code == 200, response.text
        assert_inactive(introspect(session, second["access_token"]))
        assert_inactive(introspect(session, second["refresh_token"]))

        # A token Tessera never issued: 200 (RFC 7009 §2.2).
        for unknown in ("not-a-token", "tsa_x_y"):
            assert revoke(session, unknown).status_code == 200

        third = session.fetch_token(grant_type="password")

    with oauth_session(metadata, tessera.other, method) as other:
        for token in (third["access_token"], third["refresh_token"]):
            response = revoke(other, token)
            assert response.status_code == 400, response.text
            assert response.json()["error"] == "unauthorized_client"
    with oauth_session(metadata, tessera.client) as session:
        assert_active(introspect(session, third["access_token"]), tessera.client.client_id)


def test_a_token_works_as_a_bearer_token_until_it_is_revoked(tessera, metadata):
    """RFC 6750 §2.1 through authlib's own token placement on a protected resource."""
    details_url = tessera.base_url + "/oauth20/access-tokens"
    with oauth_session(metadata, tessera.client) as session:
        token = session.fetch_token(grant_type="password")
        response = session.get(details_url)
        assert response.status_code == 200, response.text
        assert response.json()["accessToken"] == token["access_token"]
        assert response.json()["authenticated"] == "false"

        assert revoke(session, token["access_token"]).status_code == 200
        response = session.get(details_url)
        assert response.status_code == 401
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.lower().startswith("bearer ")
        assert 'error="invalid_token"' in challenge


def test_a_public_client_authenticates_with_none(tessera, metadata):
    """A public client sends only its `client_id` (RFC 6749 §2.3, the `none` method of the
    metadata document): anonymous tokens, refresh rotation and revocation still work."""
    assert "none" in metadata.token_endpoint_auth_methods_supported
    assert "none" in metadata.revocation_endpoint_auth_methods_supported
    details_url = tessera.base_url + "/oauth20/access-tokens"
    with OAuth2Session(
        client_id=tessera.public_client_id,
        token_endpoint_auth_method="none",
        revocation_endpoint_auth_method="none",
        trust_env=False,
        default_timeout=TIMEOUT,
        **metadata,
    ) as session:
        first = session.fetch_token(grant_type="password")
        second = session.refresh_token(refresh_token=first["refresh_token"])
        assert second["refresh_token"] != first["refresh_token"]
        assert session.get(details_url).status_code == 200

        response = revoke(session, second["refresh_token"], "refresh_token")
        assert response.status_code == 200, response.text
        assert session.get(details_url).status_code == 401
