#!/usr/bin/python3
"""Print the PBKDF2-HMAC-SHA512 lines that tests/unit/test_passwd.c expects
from passwd_line_build(), computed independently with Python's hashlib.
Run: python3 tests/data/auth/gen_vectors.py"""
import base64
import hashlib

VECTORS = [
    ("alice", b"password", b"saltSALTsalt", 1),
    ("alice", b"password", b"saltSALTsalt", 2),
    ("bob", b"secret", bytes(range(12)), 101),
    ("carol", b"p\x00ss\xff", bytes(range(200, 212)), 10000),
    ("dave", b"", b"\xff" * 64, 3),
    ("e", b"x" * 200, b"12345678", 4096),
]

for user, pw, salt, it in VECTORS:
    dk = hashlib.pbkdf2_hmac("sha512", pw, salt, it)
    print("%s:$7$%d$%s$%s" % (user, it, base64.b64encode(salt).decode(),
                              base64.b64encode(dk).decode()))
