#!/bin/sh
# Regenerate the throwaway PKI of tests/unit/test_tls.c: a CA, a server
# certificate for localhost/127.0.0.1, a client certificate, and an unrelated
# CA that trusts none of them. EC P-256 keeps the files small; a validity of
# 100 years keeps the committed files usable. Test-only keys: never deploy them.
set -eu
cd "$(dirname "$0")"
days=36500
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

key() { openssl ecparam -name prime256v1 -genkey -noout | openssl pkey -out "$1"; }

ca() {	# ca NAME CN
	key "$1.key"
	openssl req -x509 -new -key "$1.key" -sha256 -days $days \
	    -subj "/CN=$2" -out "$1.crt" \
	    -addext basicConstraints=critical,CA:TRUE \
	    -addext keyUsage=critical,keyCertSign,cRLSign
}

leaf() {	# leaf NAME CN EXTENSIONS
	key "$1.key"
	openssl req -new -key "$1.key" -subj "/CN=$2" -out "$tmp/$1.csr"
	printf '%s\n' "$3" >"$tmp/$1.ext"
	openssl x509 -req -in "$tmp/$1.csr" -CA ca.crt -CAkey ca.key \
	    -set_serial "0x$(openssl rand -hex 8)" -sha256 -days $days \
	    -extfile "$tmp/$1.ext" -out "$1.crt"
}

ca ca "iotbridge test CA"
ca other-ca "iotbridge unrelated CA"
leaf server localhost "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1"
leaf client "iotbridge test client" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
rm -f ca.key other-ca.key
