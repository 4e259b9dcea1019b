"""What the uplink and queue tests share: fakeaws on sys.path, one throwaway
CA for the whole session, and a writer for an iotbridged config that talks
to a FakeAws."""
import pathlib
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "fakeaws"))

from harness import FakeAws  # noqa: E402,F401  (re-exported for the tests)

from conftest import free_port  # noqa: E402

# RSA keys take a while to make: one CA and certificate serve every test.
CERTDIR = pathlib.Path(tempfile.mkdtemp(prefix="iotb-fakeaws-certs-"))


def aws_yaml(aws, client_id="gw-test", credentials=None, extra=""):
    """The aws: section for `aws` (a started FakeAws). credentials: None for
    static keys of aws.credentials[0], or the YAML of a credentials: block
    (indented by four)."""
    if credentials is None:
        c = aws.credentials[0]
        credentials = ("    source: static\n"
                       f"    access_key_id: {c['access_key_id']}\n"
                       f"    secret_access_key: {c['secret_access_key']}\n")
        if c.get("session_token"):
            credentials += f"    session_token: {c['session_token']}\n"
    return ("aws:\n"
            f"  endpoint: {aws.endpoint}\n"
            f"  region: {aws.region}\n"
            f"  client_id: {client_id}\n"
            f"  ca_file: {aws.ca_file}\n"
            "  credentials:\n" + credentials + extra)


def write_config(tmp, aws, *, rules=None, reconnect="{base: 1s, max: 2s}",
                 queue="", aws_extra="", credentials=None,
                 client_id="gw-test", broker="", sections=""):
    """An iotbridged config in tmp bridging to `aws` (None: no aws section).
    Returns (path, local MQTT port). The file is 0600: it holds keys."""
    tmp = pathlib.Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    if rules is None:
        rules = ['{topic: "sensors/#", direction: out, remote_prefix: "gw/"}',
                 '{topic: "cmd/#", direction: in}']
    text = ("listeners:\n"
            f"  - bind: 127.0.0.1:{port}\n"
            "broker:\n"
            f"  state_dir: {tmp}/state\n" + broker +
            "queue:\n"
            f"  dir: {tmp}/queue\n" + queue +
            f"reconnect: {reconnect}\n"
            "bridge:\n" + "".join(f"  - {r}\n" for r in rules) +
            "log:\n  level: debug\n" + sections)
    if aws is not None:
        text += aws_yaml(aws, client_id, credentials, aws_extra)
    path = tmp / "iotbridge.yaml"
    path.write_text(text)
    path.chmod(0o600)
    return path, port
