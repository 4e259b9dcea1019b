#!/usr/bin/python3
"""Randomized comparison of lib/creds with botocore.

Writes random credentials files (three generators: chaos, mostly well-formed
lines, well-formed sections), reads each for several profiles with botocore's
SharedCredentialProvider and with creds_parse_file() through a small driver
linked against a build's libiotbridge.a, and reports every disagreement other
than the ones documented in lib/creds/creds.h (counted as "dup-section",
"dup-key", "bracket" and "default-nested").

    /usr/bin/python3 tests/data/creds/compare.py build/gcc [SEED [FILES]]

Not part of the test suite (it takes a minute); run it after changing
lib/creds/creds.c. Exit status 1 on any disagreement.
"""

import configparser
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile

if not sys.flags.utf8_mode:
    os.execv(sys.executable, [sys.executable, '-X', 'utf8'] + sys.argv)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, HERE)

import gen  # noqa: E402: botocore's side, shared with botocore.h

DRIVER = r'''
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "creds/creds.h"
/* stdin: "path\tprofile" lines; stdout: status, line, values, message. */
int
main(void)
{
	static char line[4096], buf[1 << 20];
	struct creds c;
	struct creds_error e;

	while (fgets(line, sizeof(line), stdin) != NULL) {
		char *tab;
		FILE *f;
		size_t n;
		enum creds_status st;

		line[strcspn(line, "\n")] = '\0';
		if ((tab = strchr(line, '\t')) == NULL)
			return 1;
		*tab = '\0';
		if ((f = fopen(line, "rb")) == NULL)
			return 1;
		n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		st = creds_parse_file(buf, n, tab + 1, &c, &e);
		printf("%d\t%zu\t%s\t%s\t%s\t%s\n", (int)st, e.line,
		    c.access_key_id, c.secret_access_key, c.session_token,
		    e.msg);
		fflush(stdout);
	}
	return 0;
}
'''

OK, NO_PROFILE, INCOMPLETE, MALFORMED, TOO_LONG, INVALID = range(6)
KEYS = ['aws_access_key_id', 'aws_secret_access_key', 'aws_session_token',
        'aws_security_token']
PROFILES = ['default', 'p', 'DEFAULT', 'a]b']
GOOD = ['AKIAIOSFODNN7EXAMPLE', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
        'AKIDEXAMPLE', 'FwoGZX+/==']
ODD = ['', 'a b', '"X"', 'X # c', 'X;y', 'A' * 129, 's' * 128, 'tok-en',
       'x=y', '\u00e9', 'A\x00B', 'k:v']
BLANKS = [' ', '\t', '  ', '\u00a0', '\u3000', '\x0b', '\x1f', '']


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def key(self):
        r, k = self.r, self.r.choice(KEYS)
        x = r.random()
        if x < 0.6:
            return k
        if x < 0.8:
            return k.upper()
        if x < 0.9:
            return ''.join(c.upper() if r.random() < .5 else c for c in k)
        return k.replace('k', '\u212a', 1)      # KELVIN SIGN lowers to k

    def value(self, sane):
        r = self.r
        if sane and r.random() < .8:
            return r.choice(GOOD)
        return r.choice(GOOD + ODD)

    def line(self, sane):
        r = self.r
        x = r.random()
        if sane and r.random() < .7:
            x = 0.2 + r.random() * 0.4
        ind = r.choice(['', '', '', ' ', '  ', '\t', '\u00a0', '    '])
        if sane and r.random() < .7:
            ind = ''
        if x < 0.2:
            return ind + r.choice([
                '[default]', '[p]', '[DEFAULT]', '[profile p]',
                '[ default ]', '[p] junk', '[q]', '[a]b]', '[p', '[]',
                '[x=y', '[]]', '[Default]'])
        if x < 0.6:
            k = self.key() if r.random() < .8 else r.choice(
                ['region', 's3', 'X', 'aws_access_key', 'aws_access_key_idx'])
            return (ind + k + r.choice(BLANKS) +
                    r.choice(['=', ':', ' = ', '=:']) + r.choice(BLANKS) +
                    self.value(sane) + r.choice(BLANKS))
        if x < 0.7:
            return ind + r.choice(['#', ';']) + ' comment ' + self.value(sane)
        if x < 0.8:
            return r.choice(['', ' ', '\t', '\u00a0'])
        if x < 0.85:
            return ind + r.choice(['garbage', '= v', ': v', 'a=1\x0bb',
                                   'a=1\x0bc=2', 'k=v\u2028z', 'x'])
        return ind + r.choice(['AKIAIOSFODNN7EXAMPLE', 'k = v', 'x=1'])

    def lines_file(self, sane):
        r = self.r
        lines = [r.choice(['[default]', '[p]', '[DEFAULT]', ''])]
        lines += [self.line(sane) for _ in range(r.randint(0, 12))]
        return lines

    def sections_file(self):
        r = self.r
        out = []
        for n in r.sample(['default', 'p', 'DEFAULT', 'q', 'profile p', 'a]b'],
                          r.randint(1, 4)):
            out.append(r.choice(['', ' ', '\t']) + '[' + n + ']' +
                       r.choice(['', ' ', ' # c', '\u00a0']))
            for k in r.sample(KEYS + ['region', 's3'], r.randint(0, 6)):
                v = r.choice(GOOD + [''])
                if r.random() < .1:
                    v = self.value(False)
                if k in KEYS:
                    k = self.key() if r.random() < .3 else k
                out.append(r.choice(['', '', ' ', '\t']) + k +
                           r.choice(['=', ' = ', ':', '\t:\u00a0']) + v +
                           r.choice(['', ' ', '\u3000']))
                if k == 's3' and v == '':
                    for _ in range(r.randint(0, 2)):
                        out.append('    ' + r.choice(
                            ['a = b', 'x', 'c=d\x0be', 'c=d\x0be=f']))
                if r.random() < .05:
                    out.append(r.choice(['  more', '', '# c', '  ; c']))
        return out

    def file(self, i):
        r = self.r
        kind = i % 3
        lines = self.sections_file() if kind == 2 else self.lines_file(kind)
        eol = r.choice(['\n', '\r\n', '\r', None])
        text = ''.join(l + (eol or r.choice(['\n', '\r\n', '\r']))
                       for l in lines)
        if r.random() < .3:
            text = text.rstrip('\r\n')
        data = text.encode('utf-8')
        if r.random() < .03:
            data += b'\xff'
        return data


B64 = re.compile(r'[A-Za-z0-9+/=]*\Z')
KID = re.compile(r'[A-Z0-9]*\Z')


def want_for_values(k, s, t):
    """lib/creds's status for values botocore returned."""
    if k == '' or s == '':
        return INCOMPLETE
    for v, n, alpha in ((k, 128, KID), (s, 128, B64), (t, 4096, B64)):
        if v is None or v == '':
            continue
        if not isinstance(v, str) or '\n' in v:     # nested or continued
            return INVALID
        if len(v) > n:
            return TOO_LONG
        if not alpha.match(v):
            return INVALID
    return OK


def botocore(path, profile):
    """gen.py's outcome; for a refused file, also what configparser raised."""
    what, creds = gen.outcome(path, profile)
    if what != 'BOTO_PARSE_ERROR':
        return what, creds
    try:
        with open(path, encoding='utf-8') as f:
            configparser.RawConfigParser().read_file(f)
    except Exception as e:   # noqa: BLE001: what configparser raised
        return what, e
    return what, None        # raised by botocore's nested parse


def judge(profile, what, info, st, msg, got):
    """(agrees, category); category names a documented difference."""
    if what == 'BOTO_PARSE_ERROR':
        if st == MALFORMED:
            return True, what
        e = info
        if isinstance(e, configparser.DuplicateSectionError) and \
                e.section != profile:
            return True, 'dup-section'
        if isinstance(e, configparser.DuplicateOptionError) and not (
                e.section in (profile, 'DEFAULT') and e.option in KEYS):
            return True, 'dup-key'
        return False, what
    if st == MALFORMED and ("without ']'" in msg or 'empty section' in msg):
        return True, 'bracket'
    if st == MALFORMED and 'under an empty value' in msg:
        return True, 'default-nested'
    if what == 'BOTO_CREDS':
        want = want_for_values(*info)
        k, s, t = info
        return (st == want and (st != OK or got == (k, s, t or ''))), what
    if what in ('BOTO_PARTIAL', 'BOTO_NO_KEY_ID'):
        return st == INCOMPLETE, what
    return st == NO_PROFILE, what


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    build = sys.argv[1]
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 6000
    tmp = tempfile.mkdtemp(prefix='creds-compare-')
    src, exe = os.path.join(tmp, 'driver.c'), os.path.join(tmp, 'driver')
    with open(src, 'w') as f:
        f.write(DRIVER)
    subprocess.run(['cc', '-std=c11', '-D_POSIX_C_SOURCE=200809L',
                    '-I' + os.path.join(ROOT, 'lib'), '-o', exe, src,
                    os.path.join(build, 'lib', 'libiotbridge.a'),
                    '-lmbedcrypto'], check=True)
    drv = subprocess.Popen([exe], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True,
                           encoding='utf-8', errors='surrogateescape')
    gen = Gen(seed)
    seen, bad = {}, 0
    for i in range(count):
        data = gen.file(i)
        path = os.path.join(tmp, 'f%d' % i)
        with open(path, 'wb') as f:
            f.write(data)
        for p in PROFILES:
            drv.stdin.write('%s\t%s\n' % (path, p))
            drv.stdin.flush()
            st, line, k, s, t, msg = \
                drv.stdout.readline().rstrip('\n').split('\t')
            what, info = botocore(path, p)
            ok, cat = judge(p, what, info, int(st), msg, (k, s, t))
            seen[cat] = seen.get(cat, 0) + 1
            if not ok:
                bad += 1
                if bad <= 5:
                    print('DIFFERS %r [%s]: botocore %s %r, lib/creds %s '
                          'line %s: %s' % (data, p, what, info, st, line, msg))
        os.unlink(path)
    drv.stdin.close()
    drv.wait()
    shutil.rmtree(tmp)
    print(' '.join('%s=%d' % kv for kv in sorted(seen.items())),
          'differ=%d' % bad)
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
