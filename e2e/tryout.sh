#!/bin/bash
# Plays the device behaviours of issue 13 against monitorme dev
# --no-simulator with curl, as a new user would, and prints each
# patient's alert events: a resent batch, a reading 6 h old, a late
# in-range reading, a batching gateway that stops, a NEWS2 artefact, a
# rising NEWS2, and the resent batch again after a restart of dev.
# Usage: make build && e2e/tryout.sh   (MM= another binary)
set -u
cd "$(dirname "$0")/.."
MM=${MM:-bin/monitorme}
WORK=.cache/tryout; DIR=$WORK/data; ADDR=127.0.0.1:18080
rm -rf $WORK; mkdir -p $WORK
start() { $MM dev --no-simulator --data-dir $DIR --http-addr $ADDR > $WORK/dev.log 2>&1 & echo $! > $WORK/pid
  for i in $(seq 1 100); do curl -sf $ADDR/readyz >/dev/null && break; sleep 0.2; done
  # dev prints a new admin token each start; every /v1 route needs it.
  TOKEN=$(sed -n 's/^  API token    \(mm_[^ ]*\)$/\1/p' $WORK/dev.log); [ -n "$TOKEN" ] || echo "no API token in $WORK/dev.log"; }
stop() { kill $(cat $WORK/pid); wait $(cat $WORK/pid) 2>/dev/null; }
ts() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%S.%3NZ; }
post() { curl -s -H "Authorization: Bearer $TOKEN" -o /dev/null -w '%{http_code}' -XPOST $ADDR/v1/vitals -H 'content-type: application/json' -d "$1"; }
alerts() { sleep 1.5; curl -s -H "Authorization: Bearer $TOKEN" "$ADDR/v1/alerts?patient=$1&limit=1000" | python3 -c '
import json,sys
d=json.load(sys.stdin)
for a in sorted(d["alerts"], key=lambda a:(a["ts"],a["state"])):
    print("   ", a["ts"][11:23], a["condition"], a["state"], "score=%s"%a.get("score","-") if a["condition"]=="news2" else "", "updated" if a.get("updated") else "")
print("    (%d events)" % len(d["alerts"]))'; }
batch() { # patient device kind value from to step seq0 [tsoffset]
  python3 - "$@" <<'PY'
import json,sys,time
p,dev,kind,v,fr,to,step,seq0=sys.argv[1:9]; now=float(sys.argv[9])
unit={"spo2":"%","heart_rate":"/min","resp_rate":"/min","bp_systolic":"mm[Hg]","temperature":"Cel","o2_supplement":"1","consciousness":"1"}[kind]
out=[]
s=int(seq0)
t=float(fr)
while t<float(to):
    out.append({"patient_id":p,"device_id":dev,"kind":kind,"value":float(v),"unit":unit,"ts":time.strftime("%Y-%m-%dT%H:%M:%S",time.gmtime(now+t))+".%03dZ"%int(((now+t)%1)*1000),"seq":s})
    s+=1; t+=float(step)
print(json.dumps(out))
PY
}
start
NOW=$(date +%s); BASE=$((NOW-120))
echo "1. A retried batch: a 20 s desaturation posted, then the same batch again"
B=$(batch T1 ox1 spo2 85 0 20 1 1 $BASE); post "$B"; echo
B2=$(batch T1 ox1 spo2 97 20 60 1 21 $BASE); post "$B2"; echo; alerts T1
post "$B"; echo; post "$B2"; echo " (resent)"; alerts T1
echo "2. An old reading: SpO2 75 % stamped 6 h ago after current 97 % readings"
post "$(batch T2 ox2 spo2 97 0 30 1 1 $((NOW-30)))"; echo
post "$(batch T2 ox2 spo2 75 0 1 1 100 $((NOW-21600)))"; echo; alerts T2
echo "3. A late in-range reading stamped before a desaturation (87 % from 5 s to 25 s, 96 % stamped 2 s arrives at 15 s)"
post "$(batch T3 ox3 spo2 97 0 2 1 1 $BASE)" >/dev/null; post "$(batch T3 ox3 spo2 87 5 15 1 10 $BASE)" >/dev/null
post "$(batch T3 ox3b spo2 96 2 3 1 1 $BASE)" >/dev/null; post "$(batch T3 ox3 spo2 87 15 26 1 20 $BASE)"; echo; alerts T3
echo "4. A gateway posting 5 heart rates every 5 s, then stopping"
for i in 0 1 2 3 4 5; do post "$(batch T4 gw4 heart_rate 80 $((i*5)) $((i*5+5)) 1 $((i*5+1)) $((NOW-30)))" >/dev/null; sleep 5; done
sleep 12; alerts T4
echo "5. NEWS2: one HR 135 artefact on a normal set"
for k in "resp_rate 16" "spo2 97" "o2_supplement 0" "bp_systolic 120" "heart_rate 70" "consciousness 0" "temperature 37"; do set -- $k; post "$(batch T5 obs $1 $2 0 1 1 1 $((NOW-20)))" >/dev/null; done
post "$(batch T5 mon5 heart_rate 135 10 11 1 1 $((NOW-20)))" >/dev/null; post "$(batch T5 mon5 heart_rate 70 11 12 1 2 $((NOW-20)))"; echo; alerts T5
echo "6. NEWS2 rising within the high band: 7 for 60 s, then 18"
S=100
for t in $(seq 0 5 60); do for k in "resp_rate 25" "spo2 95" "o2_supplement 0" "bp_systolic 120" "heart_rate 115" "consciousness 0" "temperature 38.5"; do set -- $k; post "$(batch T6 obs6 $1 $2 $t $((t+1)) 1 $S $((NOW-90)))" >/dev/null; S=$((S+1)); done; done
for t in $(seq 61 5 120); do for k in "resp_rate 30" "spo2 90" "o2_supplement 1" "bp_systolic 95" "heart_rate 135" "consciousness 1" "temperature 39.5"; do set -- $k; post "$(batch T6 obs6 $1 $2 $t $((t+1)) 1 $S $((NOW-90)))" >/dev/null; S=$((S+1)); done; done
alerts T6
curl -s -H "Authorization: Bearer $TOKEN" $ADDR/v1/patients/T6/vitals/latest | python3 -c 'import json,sys; d=json.load(sys.stdin); print("    current NEWS2 on the API:", d.get("news2",{}).get("score"), d.get("news2",{}).get("band"), d.get("news2",{}).get("response"))'
echo "7. Restart monitorme dev, then resend test 1's batches"
stop; start
post "$B"; echo; post "$B2"; echo " (resent after a restart)"; alerts T1
stop
