"""paho-mqtt 1.x (Debian 12) and 2.x (Debian 13) alike.

2.x wants to be told which callback signatures the program uses; everything
here was written for 1.x's (on_connect(client, userdata, flags, rc), ...),
which 2.x still serves as CallbackAPIVersion.VERSION1. 1.x has no such
argument.

    from pahocompat import mqtt, client
    c = client(client_id="x", protocol=mqtt.MQTTv311)
"""
import paho.mqtt.client as mqtt

# what 2.x says of VERSION1 each time; pytest_configure() in the integration
# conftest silences exactly this
DEPRECATION = "Callback API version 1 is deprecated"


def client(**kw):
    """mqtt.Client(**kw) with 1.x's callback signatures on either version."""
    if hasattr(mqtt, "CallbackAPIVersion"):
        kw.setdefault("callback_api_version",
                      mqtt.CallbackAPIVersion.VERSION1)
    return mqtt.Client(**kw)
