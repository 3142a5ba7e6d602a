#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for trying `gsqhw sweep --executor slurm` without a
# real cluster (docs/cluster.md). Needs the Debian packages slurm-wlm and munge (scripts/setup.sh
# installs them); run as root, as the test suite's fixture does (tests/slurm/slurm_cluster.h
# writes the same slurm.conf). Everything lives in DIR; daemons listen on loopback only.
#   scripts/local-slurm.sh start DIR    start munged, slurmctld, slurmd; prints the SLURM_CONF to export
#   scripts/local-slurm.sh stop DIR     cancel the cluster's jobs and stop the daemons
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
action=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
export SLURM_CONF="$dir/slurm.conf"

# A loopback port nothing answers on (bash's /dev/tcp: no other tool needed).
free_port() {
  while true; do
    port=$((20000 + RANDOM % 40000))
    (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}

stop() {
  if [ -f "$dir/slurmctld.pid" ]; then
    scancel --user="$(id -un)" 2>/dev/null || true
    for _ in $(seq 1 50); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.2; done
  fi
  for daemon in slurmd slurmctld munged; do
    if [ -f "$dir/$daemon.pid" ]; then
      pid=$(cat "$dir/$daemon.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/$daemon.pid"
    fi
  done
}

case "$action" in
  stop) stop; exit 0 ;;
  start) ;;
  *) usage ;;
esac

for p in munged slurmctld slurmd sbatch; do
  command -v "$p" >/dev/null || [ -x "/usr/sbin/$p" ] || { echo "$p is missing: apt-get install slurm-wlm munge (scripts/setup.sh)" >&2; exit 2; }
done
PATH="$PATH:/usr/sbin"
mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
chmod 700 "$dir/munge"
[ -f "$dir/munge/munge.key" ] || { head -c 1024 /dev/urandom > "$dir/munge/munge.key"; chmod 600 "$dir/munge/munge.key"; }
host=$(hostname -s)
user=$(id -un)
cat > "$SLURM_CONF" <<EOF
# One node, one partition, on loopback; written by scripts/local-slurm.sh.
ClusterName=gsqhwlocal
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.daemon.pid
SlurmdPidFile=$dir/slurmd.daemon.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
MinJobAge=300
KillWait=2
InactiveLimit=0
NodeName=localnode NodeHostname=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=1000 State=UNKNOWN
PartitionName=local Nodes=localnode Default=YES MaxTime=INFINITE State=UP
EOF

# munged: -F stays in the foreground (its pid is ours to stop), -f runs it as root from a folder
# it would not choose itself, --socket keeps it apart from any system munged.
munged -F -f --socket="$dir/munge/munge.sock" --key-file="$dir/munge/munge.key" \
  --pid-file="$dir/munge/munged.pid" --seed-file="$dir/munge/munged.seed" > "$dir/log/munged.out" 2>&1 &
echo $! > "$dir/munged.pid"
for _ in $(seq 1 50); do [ -S "$dir/munge/munge.sock" ] && break; sleep 0.1; done
slurmctld -D -i -f "$SLURM_CONF" > "$dir/log/slurmctld.out" 2>&1 &
echo $! > "$dir/slurmctld.pid"
slurmd -D -N localnode -f "$SLURM_CONF" > "$dir/log/slurmd.out" 2>&1 &
echo $! > "$dir/slurmd.pid"
for _ in $(seq 1 150); do
  state=$(sinfo -h -n localnode -o %T 2>/dev/null || true)
  [ "$state" = idle ] && { echo "export SLURM_CONF=$SLURM_CONF"; exit 0; }
  sleep 0.2
done
echo "the local Slurm cluster did not start (sinfo: '${state:-no answer}'); logs in $dir/log:" >&2
tail -n 5 "$dir"/log/*.out >&2
stop
exit 1
