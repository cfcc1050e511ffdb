#!/bin/sh
# install.sh: puts tsdb-pair on a bare-metal gateway with systemd, as one node of a pair.
#
#   sudo ./install.sh --peer iotdb-2                    # first install, or upgrade in place
#   sudo ./install.sh --peer iotdb-2 --peer-secret-file peer-secret   # the twin, same secret
#   sudo ./install.sh --uninstall [--purge]
#   DESTDIR=/tmp/root ./install.sh --binary ./tsdb-pair --peer iotdb-2   # into a directory
#
# Installs /usr/local/bin/tsdb-pair, a system user and group tsdb-pair, the data directory
# (0750), /etc/tsdb-pair/tsdb-pair.env (0640: the settings and the pair's shared secret) and a
# hardened systemd unit, then enables and (re)starts the service. Running it again upgrades
# the binary and keeps the data and the settings (changing only those given). With DESTDIR
# everything goes under that directory and nothing is run on this host: no useradd, chown or
# systemctl (each is printed as "would run: ...").
#
# POSIX sh only (dash, busybox ash, bash); checked with shellcheck.
set -eu

PROG=tsdb-pair
SERVICE=tsdb-pair.service
SERVICE_USER=tsdb-pair
BIN_DIR=/usr/local/bin
CONF_DIR=/etc/tsdb-pair
ENV_FILE=$CONF_DIR/tsdb-pair.env
UNIT_DIR=/etc/systemd/system
DEFAULT_DATA=/var/lib/tsdb-pair
DEFAULT_LISTEN=0.0.0.0:8086
# Open files: one per connection (Telegraf agents, Grafana, the twin) plus the store's few.
NOFILE=65536

usage() {
	cat <<'EOF'
Usage: sudo ./install.sh --peer HOST[:PORT] [options]
       sudo ./install.sh --uninstall [--purge]

Install or upgrade tsdb-pair as a systemd service, one node of a dual-active pair.

  --peer HOST[:PORT]       the twin box (repeat or comma-separate for one address per ring)
  --listen HOST:PORT       address to serve on (default 0.0.0.0:8086)
  --data DIR               data directory (default /var/lib/tsdb-pair)
  --binary FILE            the tsdb-pair executable to install (default: ./tsdb-pair)
  --node-id ID             this node's permanent id (default: the host name)
  --peer-secret SECRET     the pair's shared secret (default: generated on first install)
  --peer-secret-file FILE  read the secret from FILE (a bare secret, or the twin's tsdb-pair.env)
  --no-start               install and enable, but do not (re)start the service
  --force                  go on when the port or the peer's name checks fail
  --strict                 with DESTDIR, fail on those checks instead of warning
  --uninstall              stop the service, remove the binary and the unit; keep data and settings
  --purge                  with --uninstall: also remove the data, the settings and the user
  -h, --help               this help

Running it again upgrades the binary and keeps the data, the settings and the secret.
DESTDIR=DIR installs under DIR and runs nothing on this host (for packaging and tests).
EOF
}

say() { printf '%s\n' "$*"; }
warn() { printf 'install.sh: warning: %s\n' "$*" >&2; }
die() {
	printf 'install.sh: %s\n' "$*" >&2
	exit 1
}

# ---- arguments ----------------------------------------------------------------------------

ACTION=install
PURGE=0
START=1
CHECKS=
OPT_PEER=
OPT_LISTEN=
OPT_DATA=
OPT_BINARY=
OPT_NODE_ID=
OPT_SECRET=
OPT_SECRET_FILE=

# For "run as root: sudo ./install.sh ..." messages.
ORIG_ARGS=$*

need_value() {
	[ "$#" -ge 2 ] || die "$1 needs a value (see --help)"
	case $2 in -*) die "$1 needs a value, got option $2 (see --help)" ;; esac
}

while [ "$#" -gt 0 ]; do
	case $1 in
	--*=*)
		opt=${1%%=*}
		val=${1#*=}
		shift
		set -- "$opt" "$val" "$@"
		continue
		;;
	--peer)
		need_value "$@"
		OPT_PEER=${OPT_PEER:+$OPT_PEER,}$2
		shift 2
		;;
	--listen) need_value "$@"; OPT_LISTEN=$2; shift 2 ;;
	--data) need_value "$@"; OPT_DATA=$2; shift 2 ;;
	--binary) need_value "$@"; OPT_BINARY=$2; shift 2 ;;
	--node-id) need_value "$@"; OPT_NODE_ID=$2; shift 2 ;;
	--peer-secret) need_value "$@"; OPT_SECRET=$2; shift 2 ;;
	--peer-secret-file) need_value "$@"; OPT_SECRET_FILE=$2; shift 2 ;;
	--no-start) START=0; shift ;;
	--force) CHECKS=warn; shift ;;
	--strict) CHECKS=fail; shift ;;
	--uninstall) ACTION=uninstall; shift ;;
	--purge) ACTION=uninstall; PURGE=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown option $1 (see --help)" ;;
	esac
done

# ---- where to install ---------------------------------------------------------------------

DESTDIR=${DESTDIR:-}
if [ -n "$DESTDIR" ]; then
	mkdir -p "$DESTDIR" || die "cannot create DESTDIR $DESTDIR"
	DESTDIR=$(cd "$DESTDIR" && pwd)
	[ "$DESTDIR" != / ] || die "DESTDIR=/ is this system itself: unset DESTDIR to install for real"
fi
# On the real system a failed port or peer check stops the install; into a DESTDIR it cannot
# say much about the box the files are for, so it only warns.
if [ -z "$CHECKS" ]; then
	if [ -n "$DESTDIR" ]; then CHECKS=warn; else CHECKS=fail; fi
fi

# Runs a command that changes the host; with DESTDIR only prints it.
run() {
	if [ -n "$DESTDIR" ]; then
		say "would run: $*"
	else
		say "+ $*"
		"$@"
	fi
}

check_failed() {
	if [ "$CHECKS" = fail ]; then
		die "$1
(--force installs anyway)"
	fi
	warn "$1"
}

# ---- settings files -----------------------------------------------------------------------

# env_get KEY FILE: the value of KEY in a systemd environment file (last one wins), unquoted.
env_get() {
	[ -r "$2" ] || return 0
	v=$(sed -n "s/^[[:space:]]*$1=//p" "$2" | tail -n 1)
	case $v in
	\"*\") v=${v#\"} v=${v%\"} ;;
	\'*\') v=${v#\'} v=${v%\'} ;;
	esac
	printf '%s' "$v"
}

# env_set FILE KEY VALUE: sets KEY in FILE in place of its line, or of its commented
# example, or at the end. Values go through the environment, so awk does not unescape them.
env_set() {
	K=$2 V=$3 awk '
		BEGIN { k = ENVIRON["K"]; line = k "=" ENVIRON["V"] }
		!done && ($0 ~ "^[ \t]*" k "=" || $0 ~ "^# " k "=") { print line; done = 1; next }
		$0 ~ "^[ \t]*" k "=" { next }
		{ print }
		END { if (!done) print line }
	' "$1" >"$1.tmp" && mv -f "$1.tmp" "$1"
}

new_env_file() {
	cat <<'EOF'
# tsdb-pair settings, read by tsdb-pair.service (EnvironmentFile=). Each line sets a flag of
# `tsdb-pair serve` as TSDB_PAIR_<FLAG>: TSDB_PAIR_MAX_BODY=64MB is --max-body 64MB. A flag on
# the command line wins over this file, which wins over /etc/tsdb-pair/tsdb-pair.toml.
# After editing: sudo systemctl restart tsdb-pair
# install.sh keeps this file when it runs again and changes only the settings it is given.
TSDB_PAIR_LISTEN=
TSDB_PAIR_DATA=
TSDB_PAIR_NODE_ID=
# The twin: HOST[:PORT], comma-separated for one address per network ring.
TSDB_PAIR_PEER=
# The pair's shared secret: the same on both boxes, so keep this file 0640 root:tsdb-pair.
TSDB_PAIR_PEER_SECRET=
# More settings (uncomment to use; see tsdb-pair serve --help):
# TSDB_PAIR_AUTH_TOKEN=token-required-on-writes-and-queries
# TSDB_PAIR_SYNC=full
# TSDB_PAIR_MAX_BODY=25MB
# TSDB_PAIR_NO_AUTO_CREATE=true
# TSDB_PAIR_WAL_RETENTION=7d
# TSDB_PAIR_WAL_MAX_BYTES=1GB
# TSDB_PAIR_TLS_CERT=/etc/tsdb-pair/tls/cert.pem
# TSDB_PAIR_TLS_KEY=/etc/tsdb-pair/tls/key.pem
# TSDB_PAIR_PEER_CA=/etc/tsdb-pair/tls/ca.pem
# TSDB_PAIR_LOG_FORMAT=json
EOF
}

# write_unit DATA PORT: the systemd unit on stdout.
write_unit() {
	cat <<EOF
# tsdb-pair: one node of a dual-active time-series database pair. Written by install.sh,
# which rewrites it on upgrade: put local changes in a drop-in (systemctl edit tsdb-pair).
[Unit]
Description=tsdb-pair time-series database (dual-active pair node)
Wants=network-online.target
After=network-online.target time-sync.target
# Keep restarting however often it fails (a disk or a network that comes back later).
StartLimitIntervalSec=0

[Service]
Type=exec
User=$SERVICE_USER
Group=$SERVICE_USER
EnvironmentFile=$ENV_FILE
ExecStart=$BIN_DIR/$PROG serve
WorkingDirectory=$1
Restart=always
RestartSec=2
# SIGTERM makes it finish requests (10 s at most), flush its hot buffers and close the store.
KillSignal=SIGTERM
TimeoutStopSec=90
LimitNOFILE=$NOFILE
UMask=0027
SyslogIdentifier=$PROG

# Hardening. The executable extracts libSQL's native addon into \$TMPDIR (/tmp) and loads it
# from there at start, so /tmp must stay executable: PrivateTmp gives it a private /tmp, but
# do not add NoExecPaths=/tmp, TemporaryFileSystem=/tmp:noexec or a noexec /tmp mount.
# MemoryDenyWriteExecute is left out too: the JavaScript JIT needs writable code pages.
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=$1
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
RemoveIPC=yes
PrivateMounts=yes
ProtectProc=invisible
SystemCallArchitectures=native
# AF_NETLINK: glibc's getaddrinfo asks the kernel for local addresses through it.
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
# No SystemCallFilter: the runtime's set of system calls (JIT, io_uring, futexes) is not
# pinned down, and a filter that kills the service on one rare call is worse than none.
EOF
	if [ "$2" -lt 1024 ]; then
		cat <<'EOF'
# A port below 1024 needs this one capability.
AmbientCapabilities=CAP_NET_BIND_SERVICE
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
EOF
	else
		say "CapabilityBoundingSet="
	fi
	cat <<'EOF'

[Install]
WantedBy=multi-user.target
EOF
}

# ---- checks -------------------------------------------------------------------------------

# elf_arch FILE: the machine an ELF executable is built for (x86_64, aarch64, ...), read from
# its header (e_machine at offset 18) without running it.
elf_arch() {
	# shellcheck disable=SC2046 # one word per byte is the point
	set -- $(od -An -tu1 -N20 "$1" 2>/dev/null)
	[ "$#" -eq 20 ] || return 1
	[ "$1.$2.$3.$4" = 127.69.76.70 ] || return 1
	if [ "$6" = 1 ]; then m=$((${19} + ${20} * 256)); else m=$((${19} * 256 + ${20})); fi
	case $m in
	62) say x86_64 ;;
	183) say aarch64 ;;
	40) say arm ;;
	3) say i386 ;;
	243) say riscv64 ;;
	*) say "machine-$m" ;;
	esac
}

host_arch() {
	case $(uname -m) in
	x86_64 | amd64) say x86_64 ;;
	aarch64 | arm64) say aarch64 ;;
	arm*) say arm ;;
	i?86) say i386 ;;
	*) uname -m ;;
	esac
}

bun_target() {
	case $1 in
	x86_64) say bun-linux-x64 ;;
	aarch64) say bun-linux-arm64 ;;
	*) say "(no Bun target for $1)" ;;
	esac
}

check_binary() {
	[ -f "$1" ] || die "no tsdb-pair executable at $1: pass --binary FILE"
	want=$(host_arch)
	got=$(elf_arch "$1") || die "$1 is not a Linux executable (no ELF header): pass the tsdb-pair binary with --binary"
	if [ "$got" != "$want" ]; then
		die "$1 is built for $got but this machine is $want: use the $want build (bun build.ts --target $(bun_target "$want"))"
	fi
	[ -x "$1" ] || chmod +x "$1" 2>/dev/null || true
	if ! BIN_VERSION=$("$1" version 2>&1); then
		die "$1 does not run on this machine: $BIN_VERSION"
	fi
	case $BIN_VERSION in
	"$PROG "*) ;;
	*) die "$1 is not tsdb-pair (its 'version' printed: $BIN_VERSION)" ;;
	esac
}

# port_listening PORT: true when something on this host listens on TCP PORT (any address).
port_listening() {
	hex=$(printf '%04X' "$1")
	for f in /proc/net/tcp /proc/net/tcp6; do
		[ -r "$f" ] || continue
		if awk -v p=":$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' "$f"; then
			return 0
		fi
	done
	return 1
}

# resolves NAME: true when NAME resolves here (or in DESTDIR's /etc/hosts).
resolves() {
	if [ -n "$DESTDIR" ] && [ -r "$DESTDIR/etc/hosts" ] &&
		awk -v n="$1" '!/^[ \t]*#/ { for (i = 2; i <= NF; i++) if ($i == n) found = 1 } END { exit !found }' "$DESTDIR/etc/hosts"; then
		return 0
	fi
	if command -v getent >/dev/null 2>&1; then
		getent hosts "$1" >/dev/null 2>&1
	else
		awk -v n="$1" '!/^[ \t]*#/ { for (i = 2; i <= NF; i++) if ($i == n) found = 1 } END { exit !found }' /etc/hosts
	fi
}

check_peers() {
	old_ifs=$IFS
	IFS=,
	set -f
	# shellcheck disable=SC2086 # split on commas
	set -- $1
	set +f
	IFS=$old_ifs
	for item in "$@"; do
		host=${item#http://}
		host=${host#https://}
		host=${host%%/*}
		case $host in
		\[*) continue ;;           # [v6]:port
		*:*:*) continue ;;         # a bare IPv6 address
		*) host=${host%%:*} ;;
		esac
		[ -n "$host" ] || die "invalid --peer $item: expected HOST[:PORT]"
		case $host in
		*[!0-9.]*) ;;
		*) continue ;; # an IPv4 address
		esac
		if [ "$host" = "$NODE_ID" ] || [ "$host" = "$(uname -n)" ]; then
			warn "--peer $host names this box itself: give the twin's name"
		fi
		if ! resolves "$host"; then
			check_failed "the twin's name $host does not resolve on this box. Without DNS, add it to /etc/hosts, e.g.:
    192.0.2.12  $host
(the twin's address on each network ring), and this box's name to the twin's /etc/hosts the same way"
		fi
	done
}

check_listen() {
	case $1 in
	\[*\]:*) LISTEN_PORT=${1##*:} ;;
	*:*:*) die "invalid --listen $1: write an IPv6 address in brackets, e.g. [::]:8086" ;;
	*:*) LISTEN_PORT=${1##*:} ;;
	*) die "invalid --listen $1: expected HOST:PORT, e.g. 0.0.0.0:8086" ;;
	esac
	case $LISTEN_PORT in
	'' | *[!0-9]*) die "invalid --listen $1: the port must be a number" ;;
	esac
	if [ "$LISTEN_PORT" -lt 1 ] || [ "$LISTEN_PORT" -gt 65535 ]; then
		die "invalid --listen $1: the port must be 1-65535"
	fi
}

# A value written into the environment file and the unit: one plain word.
check_word() {
	case $2 in
	'') die "$1 must not be empty" ;;
	*[[:space:]\"\'\\\$\`]*) die "$1 must not contain spaces, quotes, backslashes, \$ or backquotes: $2" ;;
	esac
}

read_secret_file() {
	[ -r "$1" ] || die "cannot read --peer-secret-file $1"
	if grep -q '^[[:space:]]*TSDB_PAIR_PEER_SECRET=' "$1"; then
		env_get TSDB_PAIR_PEER_SECRET "$1"
	else
		sed -n '/[^[:space:]]/{p;q;}' "$1" | tr -d ' \t\r'
	fi
}

new_secret() {
	od -An -tx1 -N32 /dev/urandom | tr -d ' \n'
}

# ---- install ------------------------------------------------------------------------------

preflight_host() {
	[ -n "$DESTDIR" ] && return 0
	[ "$(id -u)" = 0 ] || die "run as root: sudo $0 $ORIG_ARGS"
	[ -d /run/systemd/system ] || die "systemd is not running on this machine (no /run/systemd/system): install.sh sets tsdb-pair up as a systemd service; elsewhere run tsdb-pair serve under your own supervisor"
	for cmd in systemctl useradd od awk; do
		command -v "$cmd" >/dev/null 2>&1 || die "$cmd is missing on this machine"
	done
}

ensure_user() {
	if [ -n "$DESTDIR" ]; then
		run useradd --system --user-group --home-dir "$DATA" --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"
		return 0
	fi
	if getent passwd "$SERVICE_USER" >/dev/null 2>&1; then
		return 0
	fi
	if getent group "$SERVICE_USER" >/dev/null 2>&1; then
		run useradd --system --gid "$SERVICE_USER" --home-dir "$DATA" --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"
	else
		run useradd --system --user-group --home-dir "$DATA" --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"
	fi
}

install_main() {
	preflight_host
	D=$DESTDIR
	existing_env=$D$ENV_FILE
	installed_bin=$D$BIN_DIR/$PROG

	BINARY=$OPT_BINARY
	if [ -z "$BINARY" ]; then
		if [ -f "$(dirname "$0")/$PROG" ]; then BINARY=$(dirname "$0")/$PROG
		elif [ -f "./$PROG" ]; then BINARY=./$PROG
		elif [ -f "$installed_bin" ]; then BINARY=$installed_bin
		else die "no tsdb-pair executable next to install.sh or in this directory: pass --binary FILE"
		fi
	fi
	check_binary "$BINARY"

	old_listen=$(env_get TSDB_PAIR_LISTEN "$existing_env")
	old_data=$(env_get TSDB_PAIR_DATA "$existing_env")
	old_peer=$(env_get TSDB_PAIR_PEER "$existing_env")
	old_secret=$(env_get TSDB_PAIR_PEER_SECRET "$existing_env")
	old_node=$(env_get TSDB_PAIR_NODE_ID "$existing_env")

	LISTEN=${OPT_LISTEN:-${old_listen:-$DEFAULT_LISTEN}}
	DATA=${OPT_DATA:-${old_data:-$DEFAULT_DATA}}
	PEER=${OPT_PEER:-$old_peer}
	NODE_ID=${OPT_NODE_ID:-${old_node:-$(uname -n)}}
	[ -n "$PEER" ] || die "give the twin with --peer HOST (its name or address; repeat for a second network ring)"

	check_listen "$LISTEN"
	check_word --listen "$LISTEN"
	check_word --data "$DATA"
	check_word --peer "$PEER"
	check_word --node-id "$NODE_ID"
	case $DATA in
	/*) ;;
	*) die "--data must be an absolute path, got $DATA" ;;
	esac
	case $DATA in
	/home | /home/* | /root | /root/* | /run/user/*) die "--data $DATA is under a home directory, which the service cannot see (ProtectHome): use e.g. /var/lib/tsdb-pair" ;;
	/ | /etc | /etc/* | /usr | /usr/* | /bin | /sbin | /lib | /var | /tmp | /tmp/*) die "--data $DATA is a system directory: use e.g. /var/lib/tsdb-pair" ;;
	esac
	case $NODE_ID in
	[A-Za-z0-9]*) ;;
	*) die "invalid --node-id $NODE_ID: start with a letter or digit" ;;
	esac

	SECRET_NOTE=kept
	if [ -n "$OPT_SECRET" ] && [ -n "$OPT_SECRET_FILE" ]; then
		die "give --peer-secret or --peer-secret-file, not both"
	elif [ -n "$OPT_SECRET_FILE" ]; then
		SECRET=$(read_secret_file "$OPT_SECRET_FILE")
		SECRET_NOTE=given
	elif [ -n "$OPT_SECRET" ]; then
		SECRET=$OPT_SECRET
		SECRET_NOTE=given
	elif [ -n "$old_secret" ]; then
		SECRET=$old_secret
	else
		SECRET=$(new_secret)
		SECRET_NOTE=generated
	fi
	check_word "the peer secret" "$SECRET"
	[ "${#SECRET}" -ge 16 ] || die "the peer secret is too short (${#SECRET} characters): use at least 16"
	if [ "$SECRET_NOTE" = given ] && [ -n "$old_secret" ] && [ "$old_secret" != "$SECRET" ]; then
		warn "replacing the peer secret: give the twin the same one"
	fi

	# The port is ours already when this is a re-run with the same address.
	if [ "$LISTEN" != "$old_listen" ] && port_listening "$LISTEN_PORT"; then
		check_failed "port $LISTEN_PORT is in use on this machine (see: ss -ltnp 'sport = :$LISTEN_PORT'): stop what listens there or choose another --listen"
	fi
	check_peers "$PEER"

	if [ -f "$installed_bin" ]; then
		OLD_VERSION=$("$installed_bin" version 2>/dev/null || say unknown)
	else
		OLD_VERSION=
	fi
	say "installing $BIN_VERSION${D:+ into $D}"

	ensure_user

	mkdir -p "$D$BIN_DIR" "$D$CONF_DIR" "$D$UNIT_DIR" "$D$DATA"

	# The binary: copied beside the old one and renamed over it, so a running service keeps
	# its (old) file until it restarts, and a crash mid-copy leaves the old one whole.
	if [ "$BINARY" != "$installed_bin" ]; then
		cp "$BINARY" "$D$BIN_DIR/.$PROG.new"
		chmod 0755 "$D$BIN_DIR/.$PROG.new"
		mv -f "$D$BIN_DIR/.$PROG.new" "$installed_bin"
	fi
	run chown root:root "$installed_bin"

	chmod 0750 "$D$CONF_DIR"
	run chown "root:$SERVICE_USER" "$D$CONF_DIR"

	# The environment file: created from the template once, then only the given settings change.
	umask 027
	if [ -f "$existing_env" ]; then
		cp -p "$existing_env" "$existing_env.new"
	else
		new_env_file >"$existing_env.new"
	fi
	env_set "$existing_env.new" TSDB_PAIR_LISTEN "$LISTEN"
	env_set "$existing_env.new" TSDB_PAIR_DATA "$DATA"
	env_set "$existing_env.new" TSDB_PAIR_NODE_ID "$NODE_ID"
	env_set "$existing_env.new" TSDB_PAIR_PEER "$PEER"
	env_set "$existing_env.new" TSDB_PAIR_PEER_SECRET "$SECRET"
	chmod 0640 "$existing_env.new"
	mv -f "$existing_env.new" "$existing_env"
	run chown "root:$SERVICE_USER" "$existing_env"
	umask 022

	if [ -n "$old_data" ] && [ "$old_data" != "$DATA" ] && [ -d "$D$old_data" ]; then
		warn "the data directory moves from $old_data to $DATA; the data in $old_data stays there (move it yourself while the service is stopped)"
	fi
	chmod 0750 "$D$DATA"
	run chown -R "$SERVICE_USER:$SERVICE_USER" "$D$DATA"

	write_unit "$DATA" "$LISTEN_PORT" >"$D$UNIT_DIR/.$SERVICE.new"
	chmod 0644 "$D$UNIT_DIR/.$SERVICE.new"
	mv -f "$D$UNIT_DIR/.$SERVICE.new" "$D$UNIT_DIR/$SERVICE"
	run chown root:root "$D$UNIT_DIR/$SERVICE"

	if [ -z "$D" ] && command -v systemd-analyze >/dev/null 2>&1; then
		systemd-analyze verify "$UNIT_DIR/$SERVICE" || warn "systemd-analyze verify found problems in $UNIT_DIR/$SERVICE (above)"
	fi

	run systemctl daemon-reload
	run systemctl enable "$SERVICE"
	if [ "$START" = 1 ]; then
		run systemctl restart "$SERVICE"
		[ -n "$D" ] || wait_for_service
	fi

	summary
}

# Waits for the restarted service to answer; shows its log when it does not.
wait_for_service() {
	url=http://127.0.0.1:$LISTEN_PORT
	case $LISTEN in
	\[*) url="http://[::1]:$LISTEN_PORT" ;;
	0.0.0.0:*) ;;
	*) url=http://${LISTEN%:*}:$LISTEN_PORT ;;
	esac
	i=0
	while [ "$i" -lt 30 ]; do
		if systemctl is-active --quiet "$SERVICE"; then
			rc=0
			out=$(
				set -a
				# shellcheck disable=SC1090 # the file install.sh just wrote
				. "$ENV_FILE"
				set +a
				"$BIN_DIR/$PROG" status --url "$url" 2>&1
			) || rc=$?
			# 0 healthy, 1 serving but the twin is not (yet) reachable.
			if [ "$rc" -le 1 ]; then
				say "$out"
				return 0
			fi
			case $out in
			*"unknown command"*)
				# A build without `status`: being active for a few seconds is all we can tell.
				sleep 3
				if systemctl is-active --quiet "$SERVICE"; then
					say "$SERVICE is active"
					return 0
				fi
				;;
			esac
		fi
		sleep 1
		i=$((i + 1))
	done
	say "tsdb-pair did not come up within 30 s; its log:" >&2
	journalctl -u "$SERVICE" -n 30 --no-pager >&2 || true
	exit 1
}

summary() {
	if [ -n "$OLD_VERSION" ] && [ "$OLD_VERSION" != "$BIN_VERSION" ]; then
		say "upgraded $OLD_VERSION -> $BIN_VERSION; data and settings kept"
	elif [ -n "$OLD_VERSION" ]; then
		say "reinstalled $BIN_VERSION; data and settings kept"
	fi
	say ""
	say "installed:"
	say "  $D$BIN_DIR/$PROG"
	say "  $D$ENV_FILE  (settings; 0640 root:$SERVICE_USER)"
	say "  $D$UNIT_DIR/$SERVICE"
	say "  $D$DATA  (data; 0750 $SERVICE_USER:$SERVICE_USER)"
	say "node $NODE_ID listens on $LISTEN, twin: $PEER"
	case $SECRET_NOTE in
	generated) say "peer secret: generated (in $ENV_FILE)" ;;
	given) say "peer secret: as given (in $ENV_FILE)" ;;
	*) say "peer secret: kept (in $ENV_FILE)" ;;
	esac
	if [ "$SECRET_NOTE" != given ]; then
		first_peer=${PEER%%,*}
		first_peer=${first_peer%%:*}
		say ""
		say "Both boxes need the same peer secret. To set up the twin ($first_peer):"
		say "  here:  sudo sed -n 's/^TSDB_PAIR_PEER_SECRET=//p' $ENV_FILE > peer-secret"
		say "         scp peer-secret $first_peer: && rm peer-secret"
		say "  there: sudo ./install.sh --peer $NODE_ID --peer-secret-file peer-secret && rm peer-secret"
	fi
	say ""
	say "check it:  systemctl status $PROG; journalctl -u $PROG -f; $PROG status"
}

# ---- uninstall ----------------------------------------------------------------------------

uninstall_main() {
	D=$DESTDIR
	if [ -z "$D" ]; then
		[ "$(id -u)" = 0 ] || die "run as root: sudo $0 $ORIG_ARGS"
	fi
	DATA=${OPT_DATA:-$(env_get TSDB_PAIR_DATA "$D$ENV_FILE")}
	DATA=${DATA:-$DEFAULT_DATA}
	if [ -n "$D" ] || [ -d /run/systemd/system ]; then
		if [ -n "$D" ] || systemctl cat "$SERVICE" >/dev/null 2>&1; then
			run systemctl disable --now "$SERVICE"
		fi
	fi
	rm -f "$D$UNIT_DIR/$SERVICE" "$D$BIN_DIR/$PROG"
	if [ -n "$D" ] || [ -d /run/systemd/system ]; then
		run systemctl daemon-reload
	fi
	say "removed $D$BIN_DIR/$PROG and $D$UNIT_DIR/$SERVICE"
	if [ "$PURGE" = 1 ]; then
		case $DATA in
		/*/*) ;;
		*) die "refusing to remove data directory $DATA: not a path below a top-level directory" ;;
		esac
		rm -rf "$D$DATA" "$D$CONF_DIR"
		say "purged $D$DATA and $D$CONF_DIR"
		if [ -n "$D" ] || getent passwd "$SERVICE_USER" >/dev/null 2>&1; then
			run userdel "$SERVICE_USER"
		fi
		if [ -z "$D" ] && getent group "$SERVICE_USER" >/dev/null 2>&1; then
			run groupdel "$SERVICE_USER"
		fi
	else
		say "kept the data in $D$DATA and the settings in $D$CONF_DIR (--purge removes them)"
	fi
}

if [ "$ACTION" = uninstall ]; then
	uninstall_main
else
	install_main
fi
