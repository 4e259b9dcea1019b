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


def aws_yaml(aws, client_id="gw-test", credentials=None, extra="",
             transport=None, device=None):
    """The aws: section for `aws` (a started FakeAws). credentials: None for
    static keys of aws.credentials[0], False for no credentials: block, or
    the YAML of one (indented by four). transport: aws.transport (None:
    not given); device: a DeviceCert for cert_file and key_file, with
    mqtts_port fakeaws's mutual TLS port."""
    x509 = ""
    if transport is not None:
        x509 += f"  transport: {transport}\n"
    if device is not None:
        x509 += (f"  cert_file: {device.cert}\n"
                 f"  key_file: {device.key}\n"
                 f"  mqtts_port: {aws.mqtts_port}\n")
    if credentials is False:
        credentials = ""
    elif credentials is None:
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
            f"  ca_file: {aws.ca_file}\n" + x509 +
            ("  credentials:\n" + credentials if credentials else "") +
            extra)


def write_config(tmp, aws, *, rules=None, reconnect="{base: 1s, max: 2s}",
                 queue="", aws_extra="", credentials=None,
                 client_id="gw-test", broker="", sections="", transport=None,
                 device=None):
    """An iotbridged config in tmp bridging to `aws` (None: no aws section).
    Returns (path, local MQTT port). The file is 0600: it holds keys.
    transport, device: as for aws_yaml(); a transport of mutual TLS
    without a device gets one minted for client_id, and no SigV4
    credentials unless some are given."""
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
        if transport in ("mqtts", "mqtts-alpn") and device is None:
            device = aws.mint_device_cert(client_id)
            if credentials is None:
                credentials = False
        text += aws_yaml(aws, client_id, credentials, aws_extra, transport,
                         device)
    path = tmp / "iotbridge.yaml"
    path.write_text(text)
    path.chmod(0o600)
    return path, port
