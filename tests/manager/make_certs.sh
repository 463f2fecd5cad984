#!/usr/bin/env bash
# Test PKI for ebb-manager: a CA, a server certificate for the manager (localhost, 127.0.0.1
# and any extra IPs given), client certificates "node" (CN only) and "admin", one client
# certificate per name after --nodes (CN and SAN DNS:NAME: the manager accepts a node id only
# if the node's certificate names it), and "rogue", a client certificate from another CA that
# the manager must refuse.
#   make_certs.sh DIR [IP...] [--nodes NAME...]
set -euo pipefail
dir=$1; shift
mkdir -p "$dir"; cd "$dir"
san="DNS:localhost,IP:127.0.0.1"
while (($#)) && [[ $1 != --nodes ]]; do san="$san,IP:$1"; shift; done
(($#)) && shift
nodes=("$@")

ca() {  # ca NAME
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.pem" -days 2 -subj "/CN=$1" 2>/dev/null
}
leaf() {  # leaf NAME CA EXTENSIONS
  openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$1" 2>/dev/null
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -out "$1.pem" -days 2 \
    -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
ca ca
ca other-ca
leaf manager ca "subjectAltName=$san
extendedKeyUsage=serverAuth"
leaf node ca "extendedKeyUsage=clientAuth"
leaf admin ca "extendedKeyUsage=clientAuth"
for name in "${nodes[@]}"; do
  leaf "$name" ca "subjectAltName=DNS:$name
extendedKeyUsage=clientAuth"
done
leaf rogue other-ca "extendedKeyUsage=clientAuth"
