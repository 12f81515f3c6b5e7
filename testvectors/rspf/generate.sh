#!/usr/bin/env bash
# Regenerate the oneM2M RSPF vectors from independent oracles:
#  - OpenSSL's s_server/s_client print the TLS exporter output
#    (-keymatexport EXPORTER-oneM2M-Bootstrap -keymatexportlen 48) of a real
#    TLS-PSK handshake (psk_identity = KpmId, psk = Kpm), TLS 1.2 and 1.3;
#    both ends must print the same bytes;
#  - rspf.py derives Ke, KeId, Kre, KreId, Kc, KcId and target keys from
#    them with Python's hmac; gba.py computes the TS 33.220 KDF vectors.
set -euo pipefail
cd "$(dirname "$0")"
ossl=$(openssl version | cut -d' ' -f1-2)
label=EXPORTER-oneM2M-Bootstrap
ident=kpm-vector-1
psk=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
args=()
for v in 1.2 1.3; do
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  flag=-tls${v/./_}
  srv=$(mktemp)
  (sleep 4 | openssl s_server -accept "$port" -nocert -psk "$psk" -psk_identity "$ident" -cipher PSK "$flag" \
     -keymatexport "$label" -keymatexportlen 48 -naccept 1 >"$srv" 2>&1) &
  # Wait for ACCEPT (a probe connection would use up -naccept 1).
  for _ in $(seq 100); do grep -q ACCEPT "$srv" && break; sleep 0.05; done
  cli=$( (sleep 1; echo) | openssl s_client -connect "127.0.0.1:$port" -psk "$psk" -psk_identity "$ident" -cipher PSK "$flag" \
     -keymatexport "$label" -keymatexportlen 48 2>/dev/null)
  wait
  a=$(sed -n 's/.*Keying material: \([0-9A-F]*\).*/\1/p' <<<"$cli")
  b=$(sed -n 's/.*Keying material: \([0-9A-F]*\).*/\1/p' "$srv")
  rm -f "$srv"
  [ -n "$a" ] && [ "$a" = "$b" ] || { echo "TLS $v: client and server exports differ or are missing" >&2; exit 1; }
  args+=("openssl-tls${v/./}" "$ossl" "$v" "$ident" "$psk" "$a")
done
python3 rspf.py "${args[@]}"
python3 gba.py
python3 pkid.py
echo "wrote rspf.toml, gba.toml and pkid.toml"
