#!/usr/bin/env bash
# Toxiproxy's plumbing, without convdiag: PostgreSQL answers through its
# proxy, a timeout toxic there makes connecting time out and removing it
# brings it back; the broker reached through the Kafka proxy names the proxy
# as its address (so clients stay behind it), takes and gives messages
# through it, and a disabled Kafka proxy refuses.  Changes the shared
# proxies: runs alone.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
t_init toxiproxy 1
tox_reset

now_ms() { echo $(($(date +%s%N) / 1000000)); }
pg() { PGPORT=$TOX_PG_PORT PGCONNECT_TIMEOUT=2 psql -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }

assert_eq "$(pg 'SELECT current_database()')" "$T_DB" "database reached through the PostgreSQL proxy"

# Timeout 0: nothing gets through and the connection is never closed, so
# only the client's own connect timeout ends the attempt.
tox_add postgres blackhole timeout upstream '{"timeout": 0}'
start=$(now_ms)
if pg 'SELECT 1' >/dev/null 2>"$T_WORK/pg.err"; then fail "connected through a timeout toxic"; fi
ms=$(($(now_ms) - start))
grep -q 'timeout expired' "$T_WORK/pg.err" || fail "not a connect timeout: $(cat "$T_WORK/pg.err")"
((ms >= 1500 && ms < 6000)) || fail "connecting through the timeout toxic gave up after $ms ms, not about 2 s"
ok "connecting through the timeout toxic gave up after $ms ms (PGCONNECT_TIMEOUT=2)"
tox_remove postgres blackhole
assert_eq "$(pg 'SELECT 1')" 1 "a query through the PostgreSQL proxy once the toxic is gone"

# brokers ADDRESS: the broker addresses that metadata fetched from ADDRESS lists.
brokers() {
  local md
  md=$(kcat -b "$1" -L -J -m 5 -t "$T_TOPIC" 2>"$T_WORK/kcat.err") || return 1
  python3 -c 'import json, sys; print(" ".join(b["name"] for b in json.load(sys.stdin)["brokers"]))' <<<"$md"
}
md=$(brokers "$TOX_KAFKA_BROKERS") ||
  fail "no metadata through the Kafka proxy $TOX_KAFKA_BROKERS: $(tail -n 2 "$T_WORK/kcat.err")" \
    "(a broker started before its PROXIED listener existed needs deploy/local/kafka.sh stop, then start)"
assert_eq "$md" "$TOX_KAFKA_BROKERS" "broker advertised through the Kafka proxy"
assert_eq "$(brokers "127.0.0.1:$CD_KAFKA_PORT")" "127.0.0.1:$CD_KAFKA_PORT" "broker advertised on the normal listener"

printf 'k1:m1\nk2:m2\nk3:m3\n' | kcat -b "$TOX_KAFKA_BROKERS" -P -t "$T_TOPIC" -K: 2>"$T_WORK/kcat.err" ||
  fail "producing through the Kafka proxy: $(tail -n 2 "$T_WORK/kcat.err")"
got=$(kcat -b "$TOX_KAFKA_BROKERS" -C -t "$T_TOPIC" -o beginning -e -q -f '%k=%s\n' 2>"$T_WORK/kcat.err" |
  paste -sd ' ') || fail "consuming through the Kafka proxy: $(tail -n 2 "$T_WORK/kcat.err")"
assert_eq "$got" "k1=m1 k2=m2 k3=m3" "messages produced and consumed through the Kafka proxy"

tox_disable kafka
if kcat -b "$TOX_KAFKA_BROKERS" -L -m 3 -t "$T_TOPIC" >/dev/null 2>"$T_WORK/kcat.err"; then
  fail "metadata through a disabled Kafka proxy"
fi
grep -q 'Connection refused' "$T_WORK/kcat.err" || fail "not refused: $(tail -n 2 "$T_WORK/kcat.err")"
ok "a disabled Kafka proxy refuses connections"
tox_enable kafka
assert_eq "$(brokers "$TOX_KAFKA_BROKERS")" "$TOX_KAFKA_BROKERS" "broker through the Kafka proxy enabled again"
echo "1 passed, 0 failed"
