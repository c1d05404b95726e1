import pytest

from tenancy.outbound import UnsafeURL, check_url, client


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/x",
        "http://[::ffff:10.0.0.1]/x",
        "http://10.1.2.3/x",
        "http://192.168.0.5/x",
        "http://172.16.0.1/x",
        "http://0.0.0.0/x",
        "http://metadata.google.internal/computeMetadata/v1/",
        "ftp://example.com/x",
        "file:///etc/passwd",
        "http://user:pw@example.com/x",
        "http://",
        "",
    ],
)
def test_internal_and_malformed_urls_are_refused(url, settings):
    settings.OUTBOUND_ALLOW_PRIVATE = False
    settings.OUTBOUND_ALLOWED_HOSTS = []
    with pytest.raises(UnsafeURL):
        check_url(url)


def test_public_literal_address_is_allowed(settings):
    settings.OUTBOUND_ALLOW_PRIVATE = False
    assert check_url("https://93.184.216.34/hook") == "https://93.184.216.34/hook"


def test_operator_can_allow_private_or_one_host(settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True
    assert check_url("http://127.0.0.1:9/x")
    settings.OUTBOUND_ALLOW_PRIVATE = False
    settings.OUTBOUND_ALLOWED_HOSTS = ["localhost"]
    assert check_url("http://localhost:9/x")
    with pytest.raises(UnsafeURL):
        check_url("http://127.0.0.1:9/x")


def test_client_refuses_before_connecting(settings):
    settings.OUTBOUND_ALLOW_PRIVATE = False
    settings.OUTBOUND_ALLOWED_HOSTS = []
    with client(timeout=1) as http, pytest.raises(UnsafeURL):
        http.get("http://127.0.0.1:9/never")
