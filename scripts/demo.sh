#!/usr/bin/env bash
# make demo: the main job of mbackup, end to end, on this machine.
#
# A Moodle-like site (database in the local PostgreSQL, moodledata folder,
# config.php) is generated, backed up into a local repository, changed by a
# simulated day of use, backed up again, and then restored `--at` the time
# of the first backup into a folder; the restored database (loaded from
# db.sql with psql) and files are compared with the state of the first
# backup. Everything lives in .demo/ (git-ignored); running it again starts
# over.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/bin"
demo="$root/.demo"
pg="${MBACKUP_DEMO_PG:-postgres://postgres@127.0.0.1:5432/postgres}"
db=mbackup_demo
restored_db=mbackup_demo_restored

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ms() { date +%s%3N; }

pg_isready -d "$pg" -q || { echo "PostgreSQL is not reachable at $pg (start it: pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start)" >&2; exit 1; }
rm -rf "$demo"
mkdir -p "$demo"
psql -X -q -d "$pg" -c "DROP DATABASE IF EXISTS $restored_db WITH (FORCE)"
for old in $(psql -X -At -d "$pg" -c "SELECT datname FROM pg_database WHERE datname LIKE '${db}\_before\_restore\_%' OR datname LIKE '${db}\_restore\_%'"); do
	psql -X -q -d "$pg" -c "DROP DATABASE \"$old\" WITH (FORCE)"
done

say "1. Generate a Moodle-like site: database $db, moodledata, config.php"
"$bin/moodlegen" create --pg "$pg" --db "$db" --moodledata "$demo/site/moodledata" \
	--config-php "$demo/site/www/config.php" --preset demo --replace

umask 077
head -c 24 /dev/urandom | base64 > "$demo/repo.key"
cat > "$demo/mbackup.yaml" <<YAML
timezone: Europe/Zurich
repository:
  url: $demo/repo
  password_file: $demo/repo.key
defaults:
  retention: {last: 7, daily: 14, weekly: 8, monthly: 12}
environments:
  client-x:
    database: postgres://postgres@127.0.0.1:5432/$db
    moodledata: $demo/site/moodledata
    config_php: $demo/site/www/config.php
    tags: [demo]
YAML
mb() { "$bin/mbackup" --config "$demo/mbackup.yaml" "$@"; }

say "2. Create the repository"
mb init

say "3. Night 1: back up client-x"
t0=$(ms)
mb backup client-x
t_backup1=$(( $(ms) - t0 ))
"$bin/moodlegen" digest --pg "$pg" --db "$db" --moodledata "$demo/site/moodledata" --json > "$demo/night1.digest.json"
sleep 1.1
between="$(date --iso-8601=seconds)"
sleep 1.1

say "4. A day of use: 1% of users updated, log rows added and deleted, uploads, deletions"
"$bin/moodlegen" mutate --pg "$pg" --db "$db" --moodledata "$demo/site/moodledata" --preset demo --seed 2

say "5. Night 2: back up client-x again (only changes are stored)"
t0=$(ms)
mb backup client-x
t_backup2=$(( $(ms) - t0 ))
mb snapshots client-x

say "6. Restore client-x --at $between (between the two nights) into a folder"
t0=$(ms)
mb restore client-x --at "$between" --target-dir "$demo/restored"
t_restore=$(( $(ms) - t0 ))
ls -l "$demo/restored"

say "7. Verify: load db.sql into an empty database with psql and compare with night 1"
psql -X -q -d "$pg" -c "CREATE DATABASE $restored_db TEMPLATE template0"
psql -X -q -v ON_ERROR_STOP=1 -d "${pg%/*}/$restored_db" -f "$demo/restored/db.sql" > /dev/null
"$bin/moodlegen" digest --pg "$pg" --db "$restored_db" --moodledata "$demo/restored/moodledata" --json > "$demo/restored.digest.json"
python3 - "$demo/night1.digest.json" "$demo/restored.digest.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
keys = ["database_digest", "moodledata_digest", "moodledata_entries", "schema", "sequences", "tables"]
bad = [k for k in keys if a[k] != b[k]]
if bad:
    sys.exit("MISMATCH: the restored site differs from night 1 in " + ", ".join(bad))
n = sum(t["Rows"] for t in a["tables"].values())
print(f"restored database ({len(a['tables'])} tables, {n} rows) and moodledata ({a['moodledata_entries']} entries) are identical to night 1")
PY
mb check --read-data --quiet && echo "repository check --read-data: no errors"

say "Summary"
mb snapshots client-x --json > "$demo/snapshots.json"
python3 - "$demo" "$t_backup1" "$t_backup2" "$t_restore" <<'PY'
import json, os, sys
demo, b1, b2, r = sys.argv[1], *map(int, sys.argv[2:])
sn = json.load(open(os.path.join(demo, "snapshots.json")))
def du(p):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(p) for f in fs)
repo = du(os.path.join(demo, "repo"))
site = [s["db_bytes"] + s["files_bytes"] for s in sn]
mib = lambda n: f"{n/2**20:8.1f} MiB"
print(f"{'':26}{'site size':>14}{'added to repo':>16}{'time':>9}")
print(f"{'night 1 backup':26}{mib(site[0]):>14}{mib(sn[0]['added_bytes']):>16}{b1/1000:8.2f}s")
print(f"{'night 2 backup':26}{mib(site[1]):>14}{mib(sn[1]['added_bytes']):>16}{b2/1000:8.2f}s")
print(f"{'restore --at night 1':26}{'':>14}{'':>16}{r/1000:8.2f}s")
print(f"repository on disk: {mib(repo).strip()} for {mib(sum(site)).strip()} of site data "
      f"(dedup + compression {sum(site)/repo:.1f}x); night 2 stored {100*sn[1]['added_bytes']/site[1]:.1f}% of the site")
PY
