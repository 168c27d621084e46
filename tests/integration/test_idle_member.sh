#!/usr/bin/env bash
# More members than partitions: the group gives one of them nothing.  With
# --until-caught-up, each member, the one with nothing assigned included,
# exits once the group is stable and what it has is read; every event is
# stored exactly once.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"
t_init idle_member 2

# Enough that no member is through before all three are in the group.
events=200000
"$CONVDIAG" simulate --seed 81 --start "$SIM_START" --events "$events" --progress 0 >/dev/null
pids=()
for i in 1 2 3; do
  CONVDIAG_LOG_LEVEL=info "$CONVDIAG" run --until-caught-up --progress 0 > "$T_WORK/m$i.out" \
    2> "$T_WORK/m$i.err" &
  pids+=($!)
done
T_PIDS="${pids[*]}"
for i in 1 2 3; do
  rc=0
  timeout 60 tail --pid="${pids[$((i - 1))]}" -f /dev/null || fail "member $i still running after 60 s"
  wait "${pids[$((i - 1))]}" || rc=$?
  assert_eq "$rc" 0 "exit code of member $i"
done
T_PIDS=
idle=$({ grep -l "assigned 0 partition" "$T_WORK"/m*.err || true; } | wc -l)
(( idle >= 1 )) || fail "no member was given nothing: $(grep -h assigned "$T_WORK"/m*.err)"
ok "$idle member(s) with nothing assigned exited as caught up"
exactly_once "$events"
echo "1 passed, 0 failed"
