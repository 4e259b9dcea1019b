#!/usr/bin/python3
"""Generate tests/data/sigv4/vectors.h: SigV4 test vectors computed by botocore.

The point is an implementation independent of lib/sigv4: botocore's SigV4Auth
builds the canonical request, the string to sign and the signature. AWS IoT's
presigned WebSocket URL differs from botocore's SigV4QueryAuth in two ways
(see the AWS IoT protocols page and the AWS IoT Device SDKs): there is no
X-Amz-Expires, and X-Amz-Security-Token is appended after the signature
instead of being signed. So the auth parameters are put on the request here
and SigV4Auth's own primitives sign it.

Run with Debian's python3-botocore:
    /usr/bin/python3 tests/data/sigv4/gen_vectors.py > tests/data/sigv4/vectors.h
"""

import datetime
import sys

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode

TIMESTAMP = '%Y%m%dT%H%M%SZ'

# Example keys only: the documented AWS example credentials and made-up ones.
IOT_CASES = [
    # host, port, region, epoch, access key id, secret, session token
    ('a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com', 443, 'eu-west-1',
     1700000000, 'AKIAIOSFODNN7EXAMPLE',
     'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', None),
    ('a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com', 443, 'us-east-1',
     1440938160, 'AKIDEXAMPLE',
     'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
     'IQoJb3JpZ2luX2VjEH4aCXVzLWVhc3QtMSJHMEUCIQD+ab/cd+ef==/gh='),
    ('xyz123-ats.iot.ap-southeast-2.amazonaws.com', 8443, 'ap-southeast-2',
     951782400, 'ASIAEXAMPLEKEYID0001',
     'je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY',
     'FwoGZXIvYXdzEBYaD+token/with==padding+and/slashes='),
    ('localhost', 8443, 'eu-central-1', 4102444799, 'AKIDLOCALTEST',
     'secret+/=with~odd-chars_.', None),
    ('iot.example.internal', 1, 'us-gov-west-1', 0, 'AKID0',
     'k', 'a b%c&d=e/f+g~h'),
    ('a3qjEXAMPLEffp-ats.iot.cn-north-1.amazonaws.com.cn'.lower(), 65535,
     'cn-north-1', 1582934400, 'AKIACNEXAMPLE',
     'cnSECRETexample/0123456789+abcdefghijkl',
     'Zm9vYmFy+/' * 30 + '=='),
]


def iot_vector(host, port, region, epoch, akid, secret, token):
    ts = datetime.datetime.fromtimestamp(
        epoch, datetime.timezone.utc).strftime(TIMESTAMP)
    signer = SigV4Auth(Credentials(akid, secret, token),
                       'iotdevicegateway', region)
    url = 'https://%s:%d/mqtt' % (host, port)
    params = {
        'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
        'X-Amz-Credential': '%s/%s/%s/iotdevicegateway/aws4_request' % (
            akid, ts[:8], region),
        'X-Amz-Date': ts,
        'X-Amz-SignedHeaders': 'host',
    }
    req = AWSRequest(method='GET', url=url, params=params)
    req.context['timestamp'] = ts
    creq = signer.canonical_request(req)
    sts = signer.string_to_sign(req, creq)
    sig = signer.signature(sts, req)
    query = signer.canonical_query_string(req)
    host_header = signer.headers_to_sign(req)['host']
    target = '/mqtt?%s&X-Amz-Signature=%s' % (query, sig)
    if token:
        target += '&X-Amz-Security-Token=' + percent_encode(token)
    return dict(host=host, port=port, region=region, epoch=epoch, akid=akid,
                secret=secret, token=token, canonical_request=creq,
                string_to_sign=sts, signature=sig, target=target,
                url='wss://%s%s' % (host_header, target))


# Generic requests from AWS's SigV4 documentation and test suite.
GENERIC_CASES = [
    # name, method, url, headers (in order), body
    ('get-vanilla', 'GET', 'https://example.amazonaws.com/',
     [('Host', 'example.amazonaws.com'), ('X-Amz-Date', '20150830T123600Z')],
     'us-east-1', 'service'),
    ('iam-listusers', 'GET',
     'https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08',
     [('Host', 'iam.amazonaws.com'),
      ('Content-Type', 'application/x-www-form-urlencoded; charset=utf-8'),
      ('X-Amz-Date', '20150830T123600Z')],
     'us-east-1', 'iam'),
    ('get-header-value-trim', 'GET', 'https://example.amazonaws.com/',
     [('Host', 'example.amazonaws.com'), ('My-Header1', ' value1'),
      ('My-Header2', ' "a   b   c"'), ('X-Amz-Date', '20150830T123600Z')],
     'us-east-1', 'service'),
    ('get-vanilla-query-order-key-case', 'GET',
     'https://example.amazonaws.com/?Param2=value2&Param1=value1',
     [('Host', 'example.amazonaws.com'), ('X-Amz-Date', '20150830T123600Z')],
     'us-east-1', 'service'),
]


def generic_vector(name, method, url, headers, region, service):
    signer = SigV4Auth(Credentials(
        'AKIDEXAMPLE', 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY'),
        service, region)
    path, _, query = url.partition('://')[2].partition('/')[2].partition('?')
    params = [tuple(p.split('=', 1)) for p in query.split('&')] if query else []
    req = AWSRequest(method=method, url=url.partition('?')[0],
                     params=dict(params))
    for k, v in headers:
        req.headers[k] = v
    req.context['timestamp'] = '20150830T123600Z'
    creq = signer.canonical_request(req)
    sts = signer.string_to_sign(req, creq)
    return dict(name=name, method=method, path='/' + path, params=params,
                headers=headers, region=region, service=service,
                canonical_request=creq, string_to_sign=sts,
                signature=signer.signature(sts, req))


def pairs(ps):
    return ', '.join('{ %s, %s }' % (c(k), c(x)) for k, x in ps) or \
        '{ NULL, NULL }'


def c(s):
    if s is None:
        return 'NULL'
    out = '"'
    for ch in s.encode('utf-8'):
        if ch == 0x22 or ch == 0x5c:
            out += '\\' + chr(ch)
        elif ch == 0x0a:
            out += '\\n'
        elif 0x20 <= ch < 0x7f:
            out += chr(ch)
        else:
            out += '\\%03o' % ch
    return out + '"'


def main():
    w = sys.stdout.write
    w('/* Generated by tests/data/sigv4/gen_vectors.py with botocore; '
      'do not edit. */\n\n')
    w('struct iot_vector {\n\tconst char *host;\n\tuint16_t port;\n'
      '\tconst char *region;\n\tint64_t epoch;\n\tconst char *akid;\n'
      '\tconst char *secret;\n\tconst char *token;\n'
      '\tconst char *canonical_request;\n\tconst char *string_to_sign;\n'
      '\tconst char *signature;\n\tconst char *target;\n'
      '\tconst char *url;\n};\n\n')
    w('static const struct iot_vector iot_vectors[] = {\n')
    for case in IOT_CASES:
        v = iot_vector(*case)
        w('\t{\n')
        w('\t\t%s, %d, %s, %dLL,\n' % (c(v['host']), v['port'],
                                       c(v['region']), v['epoch']))
        for k in ('akid', 'secret', 'token', 'canonical_request',
                  'string_to_sign', 'signature', 'target', 'url'):
            w('\t\t%s,\n' % c(v[k]))
        w('\t},\n')
    w('};\n\n')

    w('struct generic_vector {\n\tconst char *name;\n\tconst char *method;\n'
      '\tconst char *path;\n\tstruct sigv4_pair params[4];\n'
      '\tsize_t nparams;\n\tstruct sigv4_pair headers[4];\n'
      '\tsize_t nheaders;\n\tconst char *region;\n\tconst char *service;\n'
      '\tconst char *canonical_request;\n\tconst char *string_to_sign;\n'
      '\tconst char *signature;\n};\n\n')
    w('static const struct generic_vector generic_vectors[] = {\n')
    for case in GENERIC_CASES:
        v = generic_vector(*case)
        w('\t{\n\t\t%s, %s, %s,\n' % (c(v['name']), c(v['method']),
                                      c(v['path'])))
        w('\t\t{ %s }, %d,\n' % (pairs(v['params']), len(v['params'])))
        w('\t\t{ %s }, %d,\n' % (pairs(v['headers']), len(v['headers'])))
        for k in ('region', 'service', 'canonical_request',
                  'string_to_sign', 'signature'):
            w('\t\t%s,\n' % c(v[k]))
        w('\t},\n')
    w('};\n')


if __name__ == '__main__':
    main()
